"""The rules every customer and item id obeys: in purchase files, over HTTP and in Spark.

An id is a non-empty string of at most :data:`MAX_ID_LENGTH` characters without C0 or
C1 control characters (never part of a real id, often an injection attempt). Files,
the API and Spark jobs apply the same rules, so every id a model holds can also be
asked for over HTTP and shown on a page.
"""

from __future__ import annotations

import re

MAX_ID_LENGTH = 256
#: A regular expression that re, Arrow and Spark all read the same way.
CONTROL_CHARACTERS = "[\\x00-\\x1f\\x7f-\\x9f]"
_CONTROL = re.compile(CONTROL_CHARACTERS)

EMPTY = "is empty"
HAS_CONTROL_CHARACTERS = "contains control characters"


def too_long(limit: int) -> str:
    return f"is longer than {limit} characters"


def id_problem(value: str, limit: int = MAX_ID_LENGTH) -> str | None:
    """What is wrong with one id (a phrase such as "is empty"), or None when it is valid."""
    if not value:
        return EMPTY
    if len(value) > limit:
        return too_long(limit)
    if _CONTROL.search(value):
        return HAS_CONTROL_CHARACTERS
    return None


def arrow_id_problems(column, limit: int = MAX_ID_LENGTH) -> list[tuple[str, object]]:
    """The same rules over an Arrow string column: ``(phrase, boolean mask)`` per rule, nulls counted as empty."""
    import pyarrow.compute as pc

    lengths = pc.utf8_length(column)
    return [
        (EMPTY, pc.fill_null(pc.equal(lengths, 0), True)),
        (too_long(limit), pc.fill_null(pc.greater(lengths, limit), False)),
        (HAS_CONTROL_CHARACTERS, pc.fill_null(pc.match_substring_regex(column, CONTROL_CHARACTERS), False)),
    ]


def spark_id_is_invalid(column, limit: int = MAX_ID_LENGTH):
    """The same rules as a Spark boolean column expression (true where the id is invalid)."""
    from pyspark.sql import functions as F

    return column.isNull() | (F.length(column) == 0) | (F.length(column) > limit) | column.rlike(CONTROL_CHARACTERS)
