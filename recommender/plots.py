"""Figures for the HTML reports (evaluation, experiments): drawn with matplotlib off-screen
and embedded as base64 PNG, so a report is one self-contained file."""

from __future__ import annotations

import base64
import io
import logging


def new_figure(width: float = 8, height: float = 4):
    """(pyplot, (figure, axes)) for one chart; matplotlib is imported here, on first use,
    because most processes (the API's workers) never draw."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    # A font cache written by another matplotlib on the machine makes it warn, once per missing
    # mathtext font, that it falls back to DejaVu Sans: twenty lines of noise under a report.
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    import matplotlib.pyplot as plt

    return plt, plt.subplots(figsize=(width, height), dpi=100)


def png_base64(plt, figure, *, dates_on_x: bool = False) -> str:
    """The figure as base64 PNG text, and closed (pyplot keeps every open figure alive)."""
    buffer = io.BytesIO()
    if dates_on_x:
        import matplotlib.dates as mdates

        # Matplotlib's default labels a span of minutes "13:14.000000" (minutes:seconds), which
        # reads as a clock time; the concise form gives hours:minutes and puts the date aside.
        for axes in figure.axes:
            locator = mdates.AutoDateLocator()
            axes.xaxis.set_major_locator(locator)
            axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
            axes.set_xlabel("time (UTC)")
        figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(buffer, format="png", bbox_inches="tight")  # long tick labels (a trial's settings and history) stay whole
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()
