"""The rules every customer and item id obeys: in purchase files, over HTTP and in Spark.

An id is a non-empty string of at most :data:`MAX_ID_LENGTH` characters without C0 or
C1 control characters (never part of a real id, often an injection attempt), and not of
spaces alone (a blank field padded by an export or a form, never an id). Files,
the API and Spark jobs apply the same rules, so every id a model holds can also be
asked for over HTTP and shown on a page.
"""

from __future__ import annotations

import re

MAX_ID_LENGTH = 256
#: A regular expression that re, Arrow and Spark all read the same way.
CONTROL_CHARACTERS = "[\\x00-\\x1f\\x7f-\\x9f]"
_CONTROL = re.compile(CONTROL_CHARACTERS)
#: Spaces alone, as Arrow (RE2) and Spark (Java) read it: ``\z`` is the text's very end in both
#: (Java's ``$`` also matches before a final line separator). Python tests ``str.strip`` instead.
ONLY_SPACES = r"^ +\z"

EMPTY = "is empty"
BLANK = "is only spaces"
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
    if not value.strip(" "):
        return BLANK
    return None


def arrow_id_problems(column, limit: int = MAX_ID_LENGTH) -> list[tuple[str, object]]:
    """The same rules over an Arrow string column: ``(phrase, boolean mask)`` per rule, nulls counted as empty."""
    import pyarrow.compute as pc

    lengths = pc.utf8_length(column)
    return [
        (EMPTY, pc.fill_null(pc.equal(lengths, 0), True)),
        (too_long(limit), pc.fill_null(pc.greater(lengths, limit), False)),
        (HAS_CONTROL_CHARACTERS, pc.fill_null(pc.match_substring_regex(column, CONTROL_CHARACTERS), False)),
        (BLANK, pc.fill_null(pc.match_substring_regex(column, ONLY_SPACES), False)),
    ]


def spark_id_is_invalid(column, limit: int = MAX_ID_LENGTH):
    """The same rules as a Spark boolean column expression (true where the id is invalid)."""
    from pyspark.sql import functions as F

    return column.isNull() | (F.length(column) == 0) | (F.length(column) > limit) | column.rlike(CONTROL_CHARACTERS) | column.rlike(ONLY_SPACES)


# Ids written as whole floating-point numbers: what a spreadsheet or pandas makes of a
# numeric id column with gaps (17850 -> 17850.0). Read back as the whole number's digits.
WHOLE_FLOAT_TEXT = r"^-?[0-9]+\.0+$"
NOT_WHOLE = "is not a whole number (ids stored as floating-point numbers must be whole)"
_LARGEST_EXACT_FLOAT = 2**53
_SAMPLE = 100


def arrow_float_ids(column):
    """Clean an Arrow id column of ids that arrived as floats; ``(column, changed, not_whole)``.

    - A floating-point column (Parquet ``double``): whole values become their digits
      (``17850.0`` -> ``"17850"``), NaN a missing id; a value that is not whole (or beyond
      2**53, where floats skip integers) is marked in ``not_whole``.
    - A text column whose *every* non-blank value is digits followed by ``.0`` (``17850.0``)
      was written from such a column: the ``.0`` is dropped. A column where any value lacks
      it is kept verbatim, so real string ids (``007``, ``A-1.0``) are never rewritten.
    - Any other column comes back unchanged (``changed`` False, ``not_whole`` None).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_floating(column.type):
        values = pc.if_else(pc.is_nan(column), None, column)
        whole = pc.and_(pc.equal(pc.floor(values), values), pc.less(pc.abs(values), _LARGEST_EXACT_FLOAT))
        not_whole = pc.fill_null(pc.invert(whole), False)
        integers = pc.if_else(pc.fill_null(whole, False), values, None).cast(pa.int64())
        return integers.cast(pa.string()), True, not_whole
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        return column, False, None
    # The usual column holds ordinary ids: its first values settle it without a pass over all.
    head = [value for value in column.slice(0, 10 * _SAMPLE).to_pylist() if value and value.strip(" ")][:_SAMPLE]
    pattern = re.compile(WHOLE_FLOAT_TEXT)
    if not head or not all(pattern.match(value) for value in head):
        return column, False, None
    looks_float = pc.match_substring_regex(column, WHOLE_FLOAT_TEXT)
    present = pc.and_(pc.greater(pc.utf8_length(column), 0), pc.invert(pc.match_substring_regex(column, ONLY_SPACES)))
    if pc.any(pc.and_(present, pc.invert(looks_float))).as_py():
        return column, False, None
    return pc.replace_substring_regex(column, r"\.0+$", ""), True, None
