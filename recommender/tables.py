"""Reading a CSV or Parquet file's columns for the purchase and catalog loaders, and the
helpers they share: line numbers, gzip, and finding the line a problem is on.

Columns are asked for by the loader's field names (``customer_id``, ``price``); a
:class:`~recommender.store_format.StoreFormat` says which of the file's own columns
holds each, and errors name the file's column, as its owner knows it.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from .errors import DataError
from .store_format import StoreFormat

PLAIN = StoreFormat()


def row_label(path: Path, row: int) -> int:
    """The number a user looks for: the CSV line (header is line 1) or the Parquet row (from 1)."""
    if Path(path).suffix.lower() in (".parquet", ".pq"):
        return row + 1
    return row + 2


def open_bytes(path: Path):
    """The file's bytes, decompressed when it is gzipped (``.csv.gz``), as Arrow reads it."""
    return gzip.open(path, "rb") if str(path).lower().endswith(".gz") else open(path, "rb")


UTF16_TEXT = "is UTF-16 text; save the file as UTF-8"
NOT_UTF8_TEXT = "is not valid UTF-8 text; save the file as UTF-8"
# The byte-order marks a spreadsheet or Windows editor puts first when it saves UTF-16.
_UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")


def refuse_utf16(start: bytes, path: Path) -> None:
    """DataError naming ``path`` when its first bytes (``start``) mark UTF-16 text: decoded as
    UTF-8 it fails on byte 0xff with a message that names no file and no cause."""
    if start.startswith(_UTF16_MARKS):
        raise DataError(UTF16_TEXT, path=path, line=1)


def check_utf8_text(path: Path) -> None:
    """DataError naming ``path`` and the line unless the whole file is UTF-8 text."""
    with open_bytes(path) as handle:
        refuse_utf16(handle.read(2), path)
    bad_line = first_line_not_utf8(path)
    if bad_line is not None:
        raise DataError(NOT_UTF8_TEXT, path=path, line=bad_line)


def first_line_not_utf8(path: Path) -> int | None:
    """The first line holding bytes that are not UTF-8, or None when the whole file is UTF-8.

    Checked before Arrow parses a CSV: Arrow's bad-row handler cannot decode such a row,
    prints a traceback and gives up, so invalid bytes must be refused up front, by line.
    """
    with open_bytes(path) as handle:
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            for block in iter(lambda: handle.read(1 << 20), b""):
                decoder.decode(block)
            decoder.decode(b"", final=True)
            return None
        except UnicodeDecodeError:
            pass
    with open_bytes(path) as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 1


def first_line_with_wrong_field_count(path: Path, expected: int) -> int | None:
    """The first line whose number of fields differs from the header's (error path only)."""
    with io.TextIOWrapper(open_bytes(path), newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for row in reader:
            if len(row) != expected:
                return reader.line_num
    return None


def read_table(path: Path, columns: tuple[str, ...], on_bad_rows: str, store_format: StoreFormat = PLAIN) -> tuple[pa.Table, int]:
    """Read the fields ``columns`` (those the file has) of a CSV or Parquet file.

    Each field is read from its column in ``store_format`` and comes back under the
    field's own name: CSV values as text; Parquet ids and text as strings (ids stored
    as floats as they are, for :func:`recommender.ids.arrow_float_ids`), numbers as
    numbers. Returns the table and how many malformed CSV rows were skipped.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError("is a folder; give the file itself (.csv, .csv.gz or .parquet)", path=path)
    if not path.is_file():
        raise DataError("file not found", path=path)
    if path.stat().st_size == 0:
        raise DataError("file is empty", path=path)
    if path.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(path, columns, store_format)
    try:
        return _read_csv(path, columns, on_bad_rows, store_format)
    except (OSError, EOFError) as error:  # a damaged .csv.gz: gzip.BadGzipFile, truncated stream
        raise DataError(f"cannot be read ({error})", path=path) from None


def file_columns(path: Path) -> list[str]:
    """The file's own column names, for messages (empty when they cannot be read)."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return list(pq.read_schema(path).names)
        return [name.strip().lstrip("\ufeff") for name in _read_header(path) or []]
    except (DataError, pa.ArrowException, OSError, ValueError):
        return []


def _sources(columns: tuple[str, ...], store_format: StoreFormat) -> dict[str, str]:
    """The file's column for each field (file column -> field). A column mapped to one field
    is not also read as another field of its name (``--columns quantity=price``)."""
    taken = set(store_format.columns.values())
    return {store_format.source(c): c for c in columns if c in store_format.columns or c not in taken}


def _read_parquet(path: Path, columns: tuple[str, ...], store_format: StoreFormat) -> tuple[pa.Table, int]:
    try:
        schema = pq.read_schema(path)
        present = {column: name for column, name in _sources(columns, store_format).items() if column in schema.names}
        table = pq.read_table(path, columns=list(present))
    # A damaged footer can also surface as UnicodeDecodeError (a ValueError) from the schema's metadata.
    except (pa.ArrowException, OSError, ValueError) as error:
        raise DataError(f"not a readable Parquet file ({error})", path=path) from None
    return pa.table({name: _parquet_column(path, name, table.column(column), column) for column, name in present.items()}), 0


# What each column may hold in Parquet; anything else (lists, booleans, binary) is refused
# here, by name, rather than failing later inside a cast.
_TEXT_TYPES = (pa.types.is_string, pa.types.is_large_string)
_NUMBER_TYPES = (*_TEXT_TYPES, pa.types.is_integer, pa.types.is_floating)
_ALLOWED_PARQUET_TYPES = {
    "timestamp": (*_NUMBER_TYPES, pa.types.is_timestamp),
    "quantity": _NUMBER_TYPES,
    "price": _NUMBER_TYPES,
    # Ids stored as floats are cleaned (or refused row by row) by ids.arrow_float_ids.
    "customer_id": _NUMBER_TYPES,
    "item_id": _NUMBER_TYPES,
}
_NUMBERS = ("timestamp", "quantity", "price")


def _parquet_column(path: Path, name: str, column: pa.ChunkedArray, shown: str) -> pa.ChunkedArray:
    """One Parquet column in the types the loaders handle: numbers as they are, ids stored as
    floats as they are, everything else as string; ``shown`` is the column's name in the file."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    allowed = _ALLOWED_PARQUET_TYPES.get(name, (*_TEXT_TYPES, pa.types.is_integer))
    if not any(check(column.type) for check in allowed):
        raise DataError(f"cannot hold {column.type} values", path=path, column=shown)
    is_text = any(check(column.type) for check in _TEXT_TYPES)
    kept = name in _NUMBERS or (name in _ALLOWED_PARQUET_TYPES and pa.types.is_floating(column.type))
    return column if kept and not is_text else column.cast(pa.string())


def _read_csv(path: Path, columns: tuple[str, ...], on_bad_rows: str, store_format: StoreFormat) -> tuple[pa.Table, int]:
    header = _read_header(path)
    if not header or not any(name.strip() for name in header):
        raise DataError("no header row", path=path, line=1)
    header = [name.strip().lstrip("\ufeff") for name in header]
    separator = next((mark for mark in (";", "\t", "|") if len(header) == 1 and mark in header[0]), None)
    if separator is not None:  # else the first line whose text holds a comma would be named, far below
        shown = {"\t": "tabs"}.get(separator, repr(separator))
        raise DataError(f"the header is one field holding {shown}: the file separates its fields with {shown}, "
                        "and only commas are read; save it as comma-separated CSV (or Parquet)", path=path, line=1)
    wanted = _sources(columns, store_format)
    duplicated = sorted({name for name in header if header.count(name) > 1 and name in wanted})
    if duplicated:
        raise DataError("column appears more than once in the header", path=path, line=1, column=duplicated[0])
    present = [source for source in wanted if source in header]
    check_utf8_text(path)
    skipped_rows = []

    def skip_row(row):
        skipped_rows.append(row)
        return "skip"

    parse_options = pa_csv.ParseOptions(invalid_row_handler=skip_row if on_bad_rows == "skip" else None)
    read_options = pa_csv.ReadOptions(column_names=header, skip_rows=1, use_threads=True)
    convert_options = pa_csv.ConvertOptions(
        column_types={name: pa.string() for name in present},
        include_columns=present,
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        table = pa_csv.read_csv(path, read_options, parse_options, convert_options)
    except pa.ArrowInvalid as error:
        message = str(error)
        if "Expected" in message and "columns" in message:
            line = first_line_with_wrong_field_count(path, len(header))
            raise DataError(
                f"expected {len(header)} fields like the header; use --on-bad-rows skip to drop such rows",
                path=path,
                line=line,
            ) from None
        if "Could not skip initial" in message:  # a header with no line after it
            raise DataError("no data rows after the header", path=path) from None
        raise DataError(f"cannot be read as UTF-8 CSV ({message})", path=path) from None
    # With none of the wanted columns present Arrow reads them all (include_columns=[] means all).
    table = table.select([name for name in table.column_names if name in present])
    return table.rename_columns([wanted[name] for name in table.column_names]), len(skipped_rows)


def _read_header(path: Path) -> list[str] | None:
    """The header's fields, decoding only the header's own bytes so a bad byte later is blamed on its line."""
    with open_bytes(path) as handle:
        start = handle.read(1 << 20)
    refuse_utf16(start, path)
    ends = [position for position in (start.find(b"\n"), start.find(b"\r")) if position >= 0]
    raw = start[: min(ends)] if ends else start
    try:
        first_line = raw.decode("utf-8")
        # A quoted header field may span lines; then the csv module reads on from the file.
        if first_line.count('"') % 2:
            with io.TextIOWrapper(open_bytes(path), newline="", encoding="utf-8", errors="replace") as text:
                return next(csv.reader(text), None)
        return next(csv.reader(io.StringIO(first_line, newline="")), None)
    except UnicodeDecodeError:
        raise DataError("header is not valid UTF-8 text; save the file as UTF-8", path=path, line=1) from None
    except csv.Error as error:
        raise DataError(f"header cannot be read as CSV ({error})", path=path, line=1) from None
