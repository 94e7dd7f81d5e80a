"""Knowing whether recommendations work: experiments between models, attribution of what
customers did to the answers they were shown, and the statistics of the verdict.

- :mod:`.config`: experiments as a JSON file (variants, shares, control);
- :mod:`.assignment`: the sticky, salted-hash choice of a customer's variant;
- :mod:`.attribution`: which answer led to an impression, a click, a purchase;
- :mod:`.statistics`: rates, the difference against the control and its interval, power;
- :mod:`.figures`: an experiment's figures from the event store's rows;
- :mod:`.report`: the same figures as an HTML page with plots.

All pure (rows in, values out) apart from :func:`.figures.read_figures`, which asks an
event store for the rows.
"""

from .assignment import assign, bucket
from .attribution import DEFAULT_WINDOW_SECONDS, attribute
from .config import (
    CURRENT,
    ENDPOINTS,
    POPULAR,
    Experiment,
    ExperimentConfigError,
    ExperimentSet,
    Variant,
    load_experiments,
    parse_experiments,
)
from .figures import all_figures, read_figures

__all__ = [
    "CURRENT",
    "DEFAULT_WINDOW_SECONDS",
    "ENDPOINTS",
    "POPULAR",
    "Experiment",
    "ExperimentConfigError",
    "ExperimentSet",
    "Variant",
    "all_figures",
    "assign",
    "attribute",
    "bucket",
    "load_experiments",
    "parse_experiments",
    "read_figures",
]
