"""The automatic choice of model: candidates fitted on a validation split of the store's
own data, in child processes that a time budget can stop, and the best one kept.

- :mod:`.validation`: the split (time-based when there are times, else random);
- :mod:`.candidates`: the algorithms compared, their small searches, their costs;
- :mod:`.trials` and :mod:`.worker`: one trial in a process that can be killed;
- :mod:`.choice`: the rounds, the budget, the winner and why.
"""

from .candidates import Candidate, DataShape, candidates, work_units
from .choice import AUTO, DEFAULT_METRIC, Choice, choose, choose_for_log, default_budget, parse_metric
from .trials import DONE, FAILED, SKIPPED, STOPPED, TrialOutcome, TrialRunner
from .validation import ValidationSplit, validation_split

__all__ = [
    "AUTO",
    "Candidate",
    "Choice",
    "DataShape",
    "DEFAULT_METRIC",
    "DONE",
    "FAILED",
    "SKIPPED",
    "STOPPED",
    "TrialOutcome",
    "TrialRunner",
    "ValidationSplit",
    "candidates",
    "choose",
    "choose_for_log",
    "default_budget",
    "parse_metric",
    "validation_split",
    "work_units",
]
