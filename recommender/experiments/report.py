"""The experiments report: one self-contained HTML page a merchandiser can read.

For each experiment: the verdict in a sentence, a table of the figures per variant,
and three plots over time (click-through rate and conversion so far, each variant with
its 95% interval, and the difference against the control with its interval), then
how the figures are counted and tested. Built from :func:`.figures.read_figures`'s
output with ``series_points``, like the API's answers.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

from ..plots import new_figure, png_base64


def render_report(figures: dict[str, dict], *, title: str = "Experiments", source: str = "") -> str:
    """The page for ``figures`` (experiment name -> figures with a ``series``)."""
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = "".join(_section(f) for f in figures.values()) or "<p>No experiment has served any answer yet.</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222;line-height:1.4}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}
th:first-child,td:first-child{{text-align:left}}.verdict{{font-size:1.25em;background:#f3f6fa;padding:.6em 1em;border-left:4px solid #3b6ea5}}
img{{max-width:100%}}.small{{color:#555;font-size:.9em}}</style></head><body>
<h1>{html.escape(title)}</h1><p class="small">Created {created}{' from ' + html.escape(source) if source else ''}.</p>
{sections}
</body></html>
"""


def _percent(value, digits: int = 2) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def _interval(bounds) -> str:
    return "" if not bounds else f" <span class='small'>({100 * bounds[0]:.2f}–{100 * bounds[1]:.2f}%)</span>"


def _section(figures: dict) -> str:
    name = html.escape(figures["name"])
    metric = "click-through rate" if figures["metric"] == "ctr" else "conversion"
    rows = "".join(_row(v, figures["control"]) for v in figures["variants"])
    series = figures.get("series") or []
    plots = '<p class="note">No plots over time yet: they need answers served at two moments or more.</p>'
    if len(series) >= 2:
        plots = (
            f"<h3>Click-through rate so far</h3>{_image(_plot_rates(figures, 'ctr'), 'click-through rate over time')}"
            f"<h3>Conversion so far</h3>{_image(_plot_rates(figures, 'conversion'), 'conversion over time')}"
            f"<h3>Difference in {metric} against {html.escape(figures['control'])}</h3>{_image(_plot_difference(figures), 'difference over time')}"
        )
    return f"""<h2>{name}</h2>{f"<p>{html.escape(figures['description'])}</p>" if figures.get('description') else ''}
<p class="verdict">{_verdict_sentence(figures)}</p>
<table><tr><th>variant</th><th>model</th><th>share</th><th>answers</th><th>impressions (items seen)</th><th>clicks</th><th>click-through rate</th>
<th>purchases</th><th>conversion</th><th>{metric} against {html.escape(figures['control'])}</th><th>revenue</th>
<th>revenue per customer answered</th><th>revenue per customer against {html.escape(figures['control'])}</th><th>not interested</th></tr>{rows}</table>
{plots}
<p class="small"><b>How this is counted.</b> An item counts as seen when the shop reported an impression or a click on it.
A click or purchase counts for an answer when the same customer acted on an item of that answer within
{figures['attribution_window_hours']:g} hours of being shown it. Click-through rate = clicks / items seen;
conversion = items seen and then bought / items seen; revenue per customer answered = the attributed
purchases' value at the model's catalog prices over every customer the variant answered, bought or not
(its difference from the control's: the difference of two means with a normal interval).
Intervals are 95% intervals (the differences' are widened for several variants).
<b>Test:</b> {html.escape(figures['method'])}. The verdict is about {metric}; "needs more impressions" sizes the
test to find a {figures['minimum_detectable_effect']:.0%} change with 80% power. Decide at the planned size:
stopping at the first day the difference looks significant finds differences that are not there.</p>
"""


def _row(variant: dict, control: str) -> str:
    revenue = "–" if variant["revenue"] is None else f"{variant['revenue']:,.2f}"
    label = html.escape(variant["name"]) + (" (control)" if variant["name"] == control != "control" else "")
    cells = [
        label, html.escape(variant["model"]), f"{variant['share']:.0%}", f"{variant['answers']:,}", f"{variant['impressions']:,}",
        f"{variant['clicks']:,}", _percent(variant["ctr"]) + _interval(variant.get("ctr_interval")), f"{variant['purchases']:,}",
        _percent(variant["conversion"]) + _interval(variant.get("conversion_interval")), _difference(variant, control), revenue,
        *_revenue_per_customer(variant, control), f"{variant['not_interested']:,}",
    ]
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def _revenue_per_customer(variant: dict, control: str) -> tuple[str, str]:
    """The mean revenue over the customers the variant answered, and its difference from the
    control's with the interval: whether a variant earns more, which the totals cannot say
    when the variants answered different numbers of customers."""
    mean, low_high = variant.get("revenue_per_customer"), variant.get("revenue_per_customer_interval")
    if mean is None:
        return "–", "–"
    shown = f"{mean:,.2f}" + (f" <span class='small'>({low_high[0]:,.2f} to {low_high[1]:,.2f})</span>" if low_high else "")
    found = variant.get("revenue_difference")
    if variant["name"] == control or not found:
        return shown, "–"
    return shown, (f"{found['estimate']:+,.2f} <span class='small'>({found['low']:+,.2f} to {found['high']:+,.2f}; "
                   f"{_p_value(found['p_value'])})</span>")


def _difference(variant: dict, control: str) -> str:
    """The variant's difference from the control in the experiment's metric, in percentage
    points with its interval: the figure a decision rests on, beside the rates it comes from."""
    if variant["name"] == control:
        return "–"
    found = variant.get("difference")
    if found is None:
        return "– <span class='small'>(no items seen yet)</span>"
    return (f"{100 * found['estimate']:+.2f} points <span class='small'>({100 * found['low']:+.2f} to {100 * found['high']:+.2f}; "
            f"{_p_value(found['p_value'])})</span>")


def _p_value(p: float) -> str:
    return "p &lt; 0.001" if p < 0.001 else f"p = {p:.3f}"


def _verdict_sentence(figures: dict) -> str:
    verdict, metric = figures["verdict"], "click-through rate" if figures["metric"] == "ctr" else "conversion"
    control = html.escape(figures["control"])
    if verdict["status"] == "leading":
        leader = verdict["variant"]
        others = [v for v in figures["variants"] if v.get("difference")]
        if leader == figures["control"]:
            return f"<b>{control} is leading</b>: every other variant's {metric} is lower, beyond chance."
        found = next(v["difference"] for v in others if v["name"] == leader)
        return (f"<b>{html.escape(leader)} is leading</b>: its {metric} is {100 * found['estimate']:+.2f} points against {control} "
                f"({found['confidence']:.0%} interval {100 * found['low']:+.2f} to {100 * found['high']:+.2f} points).")
    if verdict["status"] == "no difference yet":
        return f"<b>No difference yet</b>: enough items were seen to find a {figures['minimum_detectable_effect']:.0%} change in {metric}, and none shows."
    needed = verdict.get("impressions_needed")
    more = f"about {needed:,} more items seen" if needed else "more items seen"
    return f"<b>Too early to tell</b>: {more} are needed to tell a {figures['minimum_detectable_effect']:.0%} change in {metric} from chance."


def _image(png: str, alt: str) -> str:
    return f'<img alt="{alt}" src="data:image/png;base64,{png}">'


def _times(series: list[dict]) -> list[datetime]:
    return [datetime.fromtimestamp(point["at"], UTC) for point in series]


def _plot_rates(figures: dict, metric: str) -> str:
    plt, (figure, axes) = new_figure(9, 3.6)
    series, times = figures["series"], _times(figures["series"])
    for variant in figures["variants"]:
        points = [p["variants"][variant["name"]] for p in series]
        rates = [100 * p[metric] if p[metric] is not None else float("nan") for p in points]
        low = [100 * p[f"{metric}_interval"][0] if p[f"{metric}_interval"] else float("nan") for p in points]
        high = [100 * p[f"{metric}_interval"][1] if p[f"{metric}_interval"] else float("nan") for p in points]
        line = axes.plot(times, rates, label=variant["name"])[0]
        axes.fill_between(times, low, high, color=line.get_color(), alpha=0.2)
    axes.set_ylabel(("click-through rate" if metric == "ctr" else "conversion") + ", % (95% interval shaded)")
    axes.legend()
    axes.grid(alpha=0.3)
    return png_base64(plt, figure, dates_on_x=True)


def _plot_difference(figures: dict) -> str:
    plt, (figure, axes) = new_figure(9, 3.6)
    series, times = figures["series"], _times(figures["series"])
    for variant in figures["variants"]:
        if variant["name"] == figures["control"]:
            continue
        found = [p["variants"][variant["name"]]["difference"] for p in series]
        estimate = [100 * d[0] if d else float("nan") for d in found]
        line = axes.plot(times, estimate, label=f"{variant['name']} − {figures['control']}")[0]
        axes.fill_between(times, [100 * d[1] if d else float("nan") for d in found], [100 * d[2] if d else float("nan") for d in found],
                          color=line.get_color(), alpha=0.2)
    axes.axhline(0, color="#444", linewidth=1)
    axes.set_ylabel("percentage points")
    axes.legend()
    axes.grid(alpha=0.3)
    return png_base64(plt, figure, dates_on_x=True)
