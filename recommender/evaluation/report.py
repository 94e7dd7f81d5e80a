"""Evaluation reports: a JSON file for machines and an HTML page with plots for people.

Four views: metrics against k; accuracy by length of customer history (the more
a customer has bought, the better the system should know them); how popular the
recommended items are compared with the catalog; and how much of the test period's
buying is buying again (items a customer already bought, which recommendations
leave out unless purchased items are included).
"""

from __future__ import annotations

import html
import json
import textwrap
from datetime import UTC, datetime

import numpy as np

from ..plots import new_figure, png_base64
from ..selection.trials import history_text, settings_text, weightings_differ
from .evaluate import EvaluationRun
from .metrics import accuracy_at_k

HISTORY_BUCKETS = [(1, 5), (6, 10), (11, 20), (21, 50), (51, 100), (101, None)]
PLOTTED_METRICS = ("recall", "ndcg", "precision", "hit_rate")


def build_report(run: EvaluationRun, ks: list[int], *, title: str, settings: dict, repeats: dict | None = None) -> dict:
    """Everything the report shows, as plain JSON-able data (``repeats``: from
    :func:`~recommender.interactions.repeat_purchases`)."""
    ks = sorted(set(ks))
    k_curve = [k for k in (1, 2, 5, 10, 20, 50, 100) if k <= run.recommended.shape[1]]
    history_lengths = np.diff(run.train.indptr)[run.customers]
    k_main = ks[-1] if 20 not in ks else 20
    by_history = []
    for low, high in HISTORY_BUCKETS:
        inside = (history_lengths >= low) & ((history_lengths <= high) if high else True)
        if inside.sum() == 0:
            continue
        metrics = accuracy_at_k(run.hits[inside], run.n_relevant[inside], k_main)
        by_history.append({"history": f"{low}-{high}" if high else f"{low}+", "customers": int(inside.sum()), **metrics})
    item_buyers = np.bincount(run.train.indices, minlength=run.train.shape[1])
    recommended = run.recommended[:, :k_main]
    return {
        "title": title,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": settings,
        "metrics": run.metrics(ks),
        "metrics_by_k": {k: accuracy_at_k(run.hits, run.n_relevant, k) for k in k_curve},
        "k_for_breakdowns": k_main,
        "by_history_length": by_history,
        "popularity": {
            "catalog_buyers_per_item": _quantiles(item_buyers),
            "recommended_buyers_per_item": _quantiles(item_buyers[recommended[recommended >= 0]]),
        },
        "repeat_purchases": repeats,
    }


def _quantiles(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {}
    q = np.percentile(values, [10, 25, 50, 75, 90, 99])
    return {"mean": float(values.mean()), **{f"p{p}": float(v) for p, v in zip((10, 25, 50, 75, 90, 99), q)}}


def render_html(report: dict, run: EvaluationRun) -> str:
    """A self-contained HTML page (plots embedded as PNG)."""
    metric_rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{_figure_text(name, value)}</td></tr>" for name, value in report["metrics"].items()
    )
    history_rows = "".join(
        f"<tr><td>{b['history']}</td><td>{b['customers']}</td><td>{b['recall']:.4f}</td><td>{b['ndcg']:.4f}</td></tr>"
        for b in report["by_history_length"]
    )
    settings = html.escape(json.dumps(report["settings"], indent=2, default=str))
    k = report["k_for_breakdowns"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(report['title'])}</title>
<style>body{{font-family:sans-serif;max-width:980px;margin:1em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;display:block;overflow-x:auto;max-width:100%}}td,th{{border:1px solid #ccc;padding:3px 10px;text-align:right}}
img{{max-width:100%}}pre{{background:#f6f6f6;padding:1em;overflow-x:auto}}</style></head><body>
<h1>{html.escape(report['title'])}</h1><p>Created {report['created_at']}.</p>
<h2>Accuracy against k</h2><img alt="metrics against k" src="data:image/png;base64,{_plot_metrics_by_k(report)}">
<h2>Accuracy by length of customer history (k={k})</h2>
<img alt="recall by history length" src="data:image/png;base64,{_plot_by_history(report)}">
<table><tr><th>purchases in history</th><th>customers</th><th>recall@{k}</th><th>ndcg@{k}</th></tr>{history_rows}</table>
<h2>Popularity of recommended items (k={k})</h2>
<img alt="popularity of recommendations" src="data:image/png;base64,{_plot_popularity(run, k)}">
<h2>Buying again</h2>{_repeats_text(report)}
<h2>All metrics</h2><table><tr><th>metric</th><th>value</th></tr>{metric_rows}</table>
{choice_section(report["choice"]) if report.get("choice") else ""}
<h2>Settings</h2><pre>{settings}</pre></body></html>
"""


def render_choice_page(choice: dict) -> str:
    """A self-contained page on an automatic choice (published as choice.html)."""
    title = f"Automatic choice: {choice['winner']['algorithm']}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 10px;text-align:right}}
td.text{{text-align:left}}img{{max-width:100%}}</style></head><body>
{choice_section(choice)}</body></html>
"""


def choice_section(choice: dict) -> str:
    """Every candidate's validation figures and seconds, the winner, and why it won."""
    metric = choice["metric"]
    validation = choice.get("validation") or {}
    weighted = weightings_differ(choice["trials"])
    rows = []
    for trial in choice["trials"]:
        figure = trial["metrics"].get(metric)
        recall = next((v for k, v in trial["metrics"].items() if k.startswith("recall@")), None)
        params = settings_text(trial["params"])
        style = ' style="font-weight:bold"' if _is_winner(trial, choice["winner"]) else ""
        rows.append(
            f"<tr{style}><td class=text>{html.escape(trial['algorithm'])}</td>"
            f"<td class=text>{html.escape(params)}</td>{_weighting_cell(trial) if weighted else ''}"
            f"<td class=text>{html.escape(trial['status'])}</td>"
            f"<td>{'' if figure is None else f'{figure:.4f}'}</td><td>{'' if recall is None else f'{recall:.4f}'}</td>"
            f"<td>{trial['seconds']:.1f}</td><td class=text>{html.escape(trial.get('note', ''))}</td></tr>"
        )
    plot = _plot_choice(choice)
    return f"""<h2>Automatic choice of model</h2>
<p><b>{html.escape(choice['reason'])}.</b></p>
<p>Validation: {html.escape(str(validation.get('kind', '')))} split of the training data,
{validation.get('held_out_purchases', 0):,} purchases of {validation.get('customers', 0):,} customers held out;
budget {choice['budget_seconds']:.0f} s, spent {choice['seconds']:.0f} s{'; ' + html.escape(choice['ending']) if choice.get('ending') else ''}.
{_lanes_text(choice)}The winner was then fitted on all the data{_refit_text(choice)}.</p>
{_validation_repeats_text(validation)}
{f'<img alt="validation {html.escape(metric)} of every trial" src="data:image/png;base64,{plot}">' if plot else ''}
<table><tr><th>algorithm</th><th>settings</th>{'<th>history</th>' if weighted else ''}<th>trial</th><th>{html.escape(metric)}</th><th>recall</th><th>seconds</th><th>note</th></tr>
{"".join(rows)}</table>"""


def _validation_repeats_text(validation: dict) -> str:
    """How much of the held-out latest purchases were buying again (time splits only)."""
    repeats = validation.get("repeat_purchases") or {}
    if not repeats.get("test_pairs"):
        return ""
    return (
        f"<p>Buying again: <b>{repeats['repeat_share']:.1%}</b> of the held-out latest purchases ({repeats['repeat_pairs']:,} of "
        f"{repeats['test_pairs']:,} customer-item pairs) were items the customer had bought before, and "
        f"{repeats['customers_with_repeats_share']:.1%} of those customers bought something again. The lists leave such items "
        "out unless <code>include_purchased</code> is asked for; the choice is judged on the new items only.</p>"
    )


def _lanes_text(choice: dict) -> str:
    """How the trials ran, when some ran side by side (their seconds are on fewer threads)."""
    lanes, threads = choice.get("lanes", 1), choice.get("threads", 1)
    if lanes <= 1:
        return ""
    share = threads // lanes
    lent = sum(1 for trial in choice.get("trials", []) if trial.get("lent_threads"))
    lending = (f" {lent} of them took all {threads} threads once the trial beside {'it' if lent == 1 else 'them'} had ended."
               if lent else "")
    return (f"Trials that did not depend on each other (round one's, and a later round's steps of different "
            f"algorithms) ran {lanes} at a time, each on {share} thread{'s' if share > 1 else ''}; the others on {threads}.{lending} ")


def _is_winner(trial: dict, winner: dict) -> bool:
    """Whether a trial's record is the winner's: the same algorithm, settings and history weighting
    (one algorithm and settings may be tried under several weightings)."""
    return (trial["algorithm"], trial["params"], history_text(trial)) == (
        winner["algorithm"], winner["params"], history_text({"history_weighting": winner.get("history_weighting")}))


def _weighting_cell(trial: dict) -> str:
    return f"<td class=text>{html.escape(history_text(trial))}</td>"


def _refit_text(choice: dict) -> str:
    """The settings the winner's trial chose while fitting, which the refit kept, and whether
    the refit started from the trial's fitted state (known once the model is fitted)."""
    winner = choice["winner"]
    chosen = {k: v for k, v in (winner.get("refit_params") or {}).items() if winner["params"].get(k) != v}
    text = f", keeping what its trial chose while fitting ({html.escape(', '.join(f'{k}={v}' for k, v in chosen.items()))})" if chosen else ""
    started = choice.get("refit_started_from_trial")
    if started is None:
        return text
    return text + (", starting from its trial's fitted state (graph-filter's basis) instead of from scratch" if started else ", from scratch")


def _plot_choice(choice: dict) -> str:
    """The validation metric of each finished trial as a dot, one colour per algorithm."""
    metric = choice["metric"]
    done = [t for t in choice["trials"] if metric in t["metrics"]]
    if not done:
        return ""
    plt, (figure, axes) = new_figure(8, 4)
    algorithms = sorted({t["algorithm"] for t in done})
    colours = {name: f"C{k}" for k, name in enumerate(algorithms)}
    weighted = weightings_differ(choice["trials"])
    # Settings cut short on the chart (a blend's name both parts' settings): the table has them whole.
    labels = [t["algorithm"] + "\n" + textwrap.shorten(settings_text(t["params"]), 48, placeholder=" ...")
              + ("\n" + history_text(t) if weighted else "") for t in done]
    figures = [t["metrics"][metric] for t in done]
    # Dots, not bars: the axis starts near the lowest figure, so that the differences show, and a
    # bar's length would then overstate them (a trial at 0.092 looked a fifth of one at 0.132).
    axes.scatter(figures, range(len(done)), color=[colours[t["algorithm"]] for t in done], s=36, zorder=3)
    axes.set_yticks(range(len(done)), labels, fontsize=7)
    axes.invert_yaxis()
    axes.set_xlim(0.97 * min(figures), 1.02 * max(figures))
    axes.set_xlabel(f"validation {metric} (the axis does not start at 0)")
    axes.grid(alpha=0.3)
    figure.set_size_inches(8, max(3, (0.5 if weighted else 0.35) * len(done) + 1))
    return png_base64(plt, figure)


def _repeats_text(report: dict) -> str:
    """The share of test purchases that are repeats, and what it means for the store's owner."""
    repeats = report.get("repeat_purchases")
    split = (report.get("settings") or {}).get("split") or {}
    kind = split.get("kind") if isinstance(split, dict) else None
    if not repeats or not repeats["test_pairs"]:
        return "<p>No test purchases.</p>"
    if kind in ("random", "leave-last"):
        return (
            f"<p>Not measurable on a {kind} split: it holds out items a customer has not bought before, by construction. "
            "Evaluate with <code>--split time --cutoff DATE</code> to see how much of the next period's buying is buying again.</p>"
        )
    return (
        f"<p><b>{repeats['repeat_share']:.1%}</b> of the test period's purchases ({repeats['repeat_pairs']:,} of "
        f"{repeats['test_pairs']:,} customer-item pairs) are items the customer had already bought, and "
        f"{repeats['customers_with_repeats_share']:.1%} of the customers evaluated ({repeats['customers_with_repeats']:,} of "
        f"{repeats['test_customers']:,}) bought at least one item again.</p>"
        "<p>Recommendations leave out what a customer has bought, so none of these can be hit: the metrics above count "
        "them as misses. A store that lives on repeat buying can show them with <code>include_purchased=true</code> "
        "(API) or <code>--include-purchased</code> (batch scoring), as a separate \"buy again\" list.</p>"
    )


def _figure_text(name: str, value: float) -> str:
    """A metric to four decimals; a count (customers evaluated) as a whole number."""
    return f"{int(value):,}" if name == "customers" else f"{value:.4f}"


def _plot_metrics_by_k(report: dict) -> str:
    plt, (figure, axes) = new_figure(8, 4)
    ks = [int(k) for k in report["metrics_by_k"]]
    for name in PLOTTED_METRICS:
        axes.plot(ks, [report["metrics_by_k"][k][name] for k in report["metrics_by_k"]], marker="o", label=name)
    axes.set_xscale("log")
    axes.set_xticks(ks, [str(k) for k in ks])
    axes.set_xlabel("k (length of the recommendation list)")
    axes.set_ylabel("metric value")
    axes.legend()
    axes.grid(alpha=0.3)
    return png_base64(plt, figure)


def _plot_by_history(report: dict) -> str:
    plt, (figure, axes) = new_figure(8, 4)
    buckets = report["by_history_length"]
    positions = np.arange(len(buckets))
    axes.bar(positions - 0.2, [b["recall"] for b in buckets], width=0.4, label="recall")
    axes.bar(positions + 0.2, [b["ndcg"] for b in buckets], width=0.4, label="ndcg")
    axes.set_xticks(positions, [f"{b['history']}\nn={b['customers']}" for b in buckets])
    axes.set_xlabel("purchases in the customer's training history")
    axes.legend()
    axes.grid(axis="y", alpha=0.3)
    return png_base64(plt, figure)


def _plot_popularity(run: EvaluationRun, k: int) -> str:
    plt, (figure, axes) = new_figure(8, 4)
    buyers = np.bincount(run.train.indices, minlength=run.train.shape[1])
    recommended = run.recommended[:, :k]
    bins = np.unique(np.logspace(0, np.log10(max(buyers.max(), 2)) + 0.01, 30).astype(int))
    shown = np.maximum(buyers[recommended[recommended >= 0]], 1)
    catalog = np.maximum(buyers, 1)
    # Weights make each bar a share, so both histograms read on one scale despite log bins.
    axes.hist(catalog, bins=bins, alpha=0.6, weights=np.full(len(catalog), 1 / len(catalog)), label="catalog items")
    axes.hist(shown, bins=bins, alpha=0.6, weights=np.full(len(shown), 1 / max(len(shown), 1)), label="recommended slots")
    axes.set_xscale("log")
    axes.set_xlabel("buyers per item in the training data")
    axes.set_ylabel("share")
    axes.legend()
    return png_base64(plt, figure)
