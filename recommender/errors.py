"""Exceptions that carry enough context for a user to fix the problem."""

from __future__ import annotations


class RecommenderError(Exception):
    """Base class for every error this package raises on purpose."""


class DataError(RecommenderError):
    """Input data is unusable; names the file, line and column at fault."""

    def __init__(self, message: str, *, path=None, line: int | None = None, column: str | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        self.column = column
        self.reason = message
        where = []
        if self.path:
            where.append(self.path)
        if line is not None:
            # Parquet has rows, not lines: say which the user should look for.
            unit = "row" if self.path and self.path.lower().endswith((".parquet", ".pq")) else "line"
            where.append(f"{unit} {line}")
        if column:
            where.append(f"column '{column}'")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class ArtifactError(RecommenderError):
    """A model folder is missing, damaged, tampered with or of an unknown format."""


class NotFittedError(RecommenderError):
    """A model was asked for results before ``fit`` was called."""


class UnknownIdError(RecommenderError, KeyError):
    """An id that the model's vocabulary does not contain."""

    def __str__(self) -> str:  # KeyError would otherwise print the repr of the args
        return str(self.args[0]) if self.args else ""


class UnknownCategoryError(RecommenderError, ValueError):
    """A category filter that no item of the model has."""


class NoKnownItemsError(RecommenderError, ValueError):
    """A candidate list (``include``) none of whose ids the model knows: an empty answer
    would look like "nothing to recommend" when the ids are wrong or the model is older."""


class EmptySplitError(RecommenderError, ValueError):
    """A held-out split with nothing on one side (a time cutoff outside the data's dates,
    customers too short for leave-last): fitting on nothing fails, and metrics over no test
    customer are the mean of nothing (NaN), which must never be reported or published."""
