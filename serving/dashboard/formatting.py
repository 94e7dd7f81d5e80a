"""How figures read on the pages: milliseconds, rates, counts, times, metric tables."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from markupsafe import Markup, escape

_COUNTS = ("customers",)  # metrics that are counts, not rates
_LABELS = {"customers": "customers evaluated"}


def milliseconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    value = seconds * 1000
    return f"{value:.2f} ms" if value < 10 else f"{value:.0f} ms" if value >= 100 else f"{value:.1f} ms"


def thousands(value) -> str:
    """A count with thousands separators ("–" when there is none)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "–"
    return f"{value:,.0f}"


def score(value: float | None) -> str:
    """A score as a person reads it: four significant digits, and a popular item's score (its
    buyers, in the thousands) as a count rather than 8.405e+04."""
    if value is None:
        return "–"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def percent(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.1f}%"


def figure(name: str, value) -> str:
    """A metric for a table: counts as integers, rates with four decimals."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "–" if value is None else str(value)
    return f"{value:,.0f}" if name in _COUNTS else f"{value:.4f}"


def metric_names(manifests: list[dict]) -> list[str]:
    """Every metric any of the manifests has, rates first ordered by k, counts last."""
    names = {name for manifest in manifests if isinstance(manifest.get("metrics"), dict) for name in manifest["metrics"]}
    return sorted(names, key=lambda name: (name in _COUNTS, _k_of(name), name))


def metric_rows(metrics) -> list[tuple[str, str]]:
    """(name, value text) for one manifest's metrics."""
    if not isinstance(metrics, dict):
        return []
    return [(metric_label(name), figure(name, metrics[name])) for name in metric_names([{"metrics": metrics}])]


def headline_metrics(metrics) -> list[tuple[str, str]]:
    """The metrics at the largest k measured, and how many customers were evaluated (the
    models page has them all)."""
    rows = metric_rows(metrics)
    largest = max((_k_of(name) for name in (metrics or {})), default=0) if isinstance(metrics, dict) else 0
    return [(label, value) for label, value in rows if "@" not in label or label.endswith(f"@{largest}")]


def metric_label(name: str) -> str:
    return _LABELS.get(name, name)


def _k_of(name: str) -> int:
    _, _, k = name.partition("@")
    return int(k) if k.isdigit() else 0


def when(epoch_seconds: float) -> str:
    """Epoch seconds as readable UTC time."""
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def iso_time(text) -> str:
    """A manifest's ISO 8601 time, shorter: "2026-12-02 03:09 UTC" ("–" when absent)."""
    if not isinstance(text, str) or not text:
        return "–"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def breakable(text) -> Markup:
    """Text that may wrap after "/", "-" and "_" on a narrow screen (escaped, then <wbr> added)."""
    return Markup(re.sub(r"([/_-])", r"\1<wbr>", str(escape(str(text)))))
