"""Charts drawn on the server as inline SVG: no JavaScript, nothing fetched from anywhere,
and every chart has a table beside it on its page with the same figures.

Two shapes cover the dashboard: grouped horizontal bars, optionally with an interval
whisker per bar (latency per endpoint, metrics per model version, rates per experiment
variant), and lines over time with an interval band (rates per variant per day).
Labels are escaped by :class:`markupsafe.Markup` formatting; only numbers computed
here go into the SVG unescaped.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup

# Colour-blind-safe (Okabe-Ito), dark enough for text on white.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#8a6d00", "#56b4e9")
WIDTH = 400
FONT = 13
BAR = 13
_ids = itertools.count()


@dataclass
class Bar:
    series: str
    value: float
    low: float | None = None  # an interval around the value, drawn as a whisker
    high: float | None = None


@dataclass
class Point:
    x: float  # where on the time axis (epoch seconds), so moments a few seconds apart stay apart
    x_label: str
    value: float
    low: float | None = None
    high: float | None = None


def _colours(series: Sequence[str]) -> dict[str, str]:
    return {name: PALETTE[k % len(PALETTE)] for k, name in enumerate(series)}


def _legend(series: Sequence[str], colours: dict[str, str], y: float) -> list[Markup]:
    parts, x = [], 0.0
    for name in series:
        parts.append(Markup('<rect x="{}" y="{}" width="10" height="10" fill="{}"/>').format(x, y, colours[name]))
        parts.append(Markup('<text x="{}" y="{}">{}</text>').format(x + 14, y + 9.5, name))
        x += 30 + 8 * len(name)  # a generous guess of the text's width: no layout engine here
    return parts


def _svg(title: str, height: float, body: list[Markup]) -> Markup:
    chart_id = f"chart-{next(_ids)}"
    return Markup(
        '<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-labelledby="{id}" font-size="{font}" '
        'font-family="system-ui, sans-serif" xmlns="http://www.w3.org/2000/svg"><title id="{id}">{title}</title>{body}</svg>'
    ).format(w=WIDTH, h=round(height, 1), id=chart_id, font=FONT, title=title, body=Markup("").join(body))


def grouped_bars(
    groups: Sequence[tuple[str, Sequence[Bar]]], *, title: str, value_text: Callable[[float], str], scale_max: float | None = None
) -> Markup:
    """One labelled group per entry, one bar per series in it, on one shared scale from 0.

    ``value_text`` writes a value beside its bar; ``scale_max`` fixes the right end of the
    scale (1.0 for rates), otherwise the largest value or interval end sets it."""
    series = list(dict.fromkeys(bar.series for _, bars in groups for bar in bars))
    colours = _colours(series)
    ends = [max(bar.value, bar.high if bar.high is not None else bar.value) for _, bars in groups for bar in bars]
    top = scale_max if scale_max is not None else max([end for end in ends if end > 0], default=1.0)
    span = WIDTH - 90  # room on the right for the value text
    body: list[Markup] = []
    y = 0.0
    if len(series) > 1:
        body += _legend(series, colours, y)
        y += 20
    for label, bars in groups:
        body.append(Markup('<text x="0" y="{}" font-weight="600">{}</text>').format(y + FONT, label))
        y += FONT + 5
        for bar in bars:
            length = max(0.0, min(bar.value, top)) / top * span
            body.append(
                Markup('<rect x="0" y="{}" width="{}" height="{}" fill="{}"><title>{}: {}</title></rect>').format(
                    y, round(length, 1), BAR, colours[bar.series], bar.series, value_text(bar.value)
                )
            )
            text_x = length + 4
            if bar.low is not None and bar.high is not None:
                low, high = (max(0.0, min(v, top)) / top * span for v in (bar.low, bar.high))
                middle = y + BAR / 2
                body.append(
                    Markup(
                        '<path d="M{lo} {m}H{hi}M{lo} {t}V{b}M{hi} {t}V{b}" stroke="#222" stroke-width="1.5" fill="none"/>'
                    ).format(lo=round(low, 1), hi=round(high, 1), m=middle, t=y + 1, b=y + BAR - 1)
                )
                text_x = max(text_x, high + 4)
            body.append(Markup('<text x="{}" y="{}">{}</text>').format(round(min(text_x, span + 4), 1), y + BAR - 2, value_text(bar.value)))
            y += BAR + 4
        y += 8
    return _svg(title, y, body)


def lines_over_time(
    series: dict[str, Sequence[Point]], *, title: str, value_text: Callable[[float], str], height: float = 220
) -> Markup:
    """One line per series over a shared time axis (the first and last moments labelled), each
    with its interval drawn as a translucent band, on a scale from 0 to the largest value or
    interval end."""
    names = list(series)
    colours = _colours(names)
    every = sorted((point for points in series.values() for point in points), key=lambda point: point.x)
    ends = [max(p.value, p.high if p.high is not None else p.value) for points in series.values() for p in points]
    top = max([end for end in ends if end > 0], default=1.0)
    left, right, legend_height, bottom = 48.0, WIDTH - 8.0, 22.0, height - 22.0
    plot_top = legend_height + 6

    first, last = (every[0].x, every[-1].x) if every else (0.0, 0.0)

    def x_of(x: float) -> float:
        return left + (right - left) * ((x - first) / (last - first) if last > first else 0.5)

    def y_of(value: float) -> float:
        return bottom - (bottom - plot_top) * max(0.0, min(value, top)) / top

    body = _legend(names, colours, 0)
    for tick in range(5):
        value = top * tick / 4
        body.append(
            Markup('<path d="M{} {y}H{}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>').format(
                left, right, left - 4, round(y_of(value) + 4, 1), value_text(value), y=round(y_of(value), 1)
            )
        )
    if every:
        body.append(Markup('<text x="{}" y="{}">{}</text>').format(left, height - 4, every[0].x_label))
        if last > first:
            body.append(Markup('<text x="{}" y="{}" text-anchor="end">{}</text>').format(right, height - 4, every[-1].x_label))
    for name, points in series.items():
        banded = [p for p in points if p.low is not None and p.high is not None]
        if banded:
            outline = [(x_of(p.x), y_of(p.high)) for p in banded] + [(x_of(p.x), y_of(p.low)) for p in reversed(banded)]
            body.append(
                Markup('<polygon points="{}" fill="{}" fill-opacity="0.18"/>').format(
                    " ".join(f"{x:.1f},{y:.1f}" for x, y in outline), colours[name]
                )
            )
        path = " ".join(f"{'M' if k == 0 else 'L'}{x_of(p.x):.1f} {y_of(p.value):.1f}" for k, p in enumerate(points))
        body.append(Markup('<path d="{}" stroke="{}" stroke-width="2" fill="none"/>').format(path, colours[name]))
        for p in points:
            body.append(
                Markup('<circle cx="{:.1f}" cy="{:.1f}" r="3" fill="{}"><title>{} {}: {}</title></circle>').format(
                    x_of(p.x), y_of(p.value), colours[name], name, p.x_label, value_text(p.value)
                )
            )
    return _svg(title, height, body)
