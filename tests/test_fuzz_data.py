"""Data loading fuzzed with hypothesis: malformed CSV and Parquet never escape as anything but DataError.

Whatever the bytes, ``load_purchases`` either returns a valid log (every id a
non-empty string within the limits) or raises :class:`DataError` naming the file;
under ``on_bad_rows='skip'`` the rows it drops are counted in ``log.skipped``.
Training on such a file through ``training.pipeline.train`` either publishes a
complete, verifiable model or leaves the models folder exactly as it was.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from recommender.artifacts import load_model
from recommender.errors import DataError
from recommender.ids import CONTROL_CHARACTERS, MAX_ID_LENGTH
from recommender.purchases import load_purchases
from recommender.store_format import StoreFormat
from training.pipeline import train

pytestmark = pytest.mark.slow
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
COLUMNS = ["customer_id", "item_id", "timestamp", "quantity", "event_type", "note", "", " customer_id"]
CONTROL = re.compile(CONTROL_CHARACTERS)
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]

# Cells a real export produces, plus the ones that break parsers: quotes, separators,
# newlines, NUL, lone surrogates (unencodable), huge fields, numbers in odd forms.
cells = st.one_of(
    st.sampled_from(["", " ", "c1", "a1", "007", "1.5", "-1", "0", "nan", "inf", "1e400", "2025-03-01T10:00:00Z", "purchase", "view", '"', '""', ",", "\n", "\r\n", "\x00", "x" * (MAX_ID_LENGTH + 1), "y" * 100_000, "\ufeff", "é", "\u202e"]),
    st.text(max_size=12),
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


plausible_cells = st.sampled_from(["c1", "c2", "a1", "a2", "007", "1", "2.5", "purchase", "view", "cart", "2025-03-01T10:00:00Z", "1740823200"])


@st.composite
def csv_documents(draw, break_header: bool = True) -> bytes:
    """Mostly-plausible purchase files with a few things wrong: the interesting inputs."""
    header = ["customer_id", "item_id"] + draw(st.lists(st.sampled_from(COLUMNS), max_size=3))
    header = draw(st.permutations(header))
    if break_header and draw(st.booleans()):  # break the header: drop, rename or repeat a column
        header = draw(st.lists(st.sampled_from(COLUMNS), max_size=6))
    width = len(header)
    row = st.lists(st.one_of(plausible_cells, plausible_cells, cells), min_size=width, max_size=width)
    ragged = st.lists(cells, min_size=0, max_size=width + 2)
    rows = draw(st.lists(st.one_of(row, row, row, ragged), max_size=8))
    separator = draw(st.sampled_from([",", ",", ",", ";", "\t"]))
    lines = [separator.join(header)] + [separator.join(r) for r in rows]
    text = draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines) + draw(st.sampled_from(["", "\n"]))
    content = text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")
    if draw(st.integers(0, 5)) == 0:  # bytes no encoding produced: invalid UTF-8 mid-file
        position = draw(st.integers(0, len(content)))
        content = content[:position] + draw(st.binary(min_size=1, max_size=4)) + content[position:]
    return content


arrow_columns = st.sampled_from(
    [
        pa.array(["c1", "c2", "c1"]),
        pa.array(["a1", "", "a2"]),
        pa.array([1, 2, 3]),
        pa.array([1.5, float("nan"), -2.0]),
        pa.array([None, None, None], pa.string()),
        pa.array([b"\xff\xfe", b"a", b"b"]),
        pa.array([True, False, True]),
        pa.array([[1], [2], []]),
        pa.array(["x" * (MAX_ID_LENGTH + 1), "b", "c"]),
        pa.array([0, 10**12, -5], pa.timestamp("s")),
        pa.array(["purchase", "refund", None]),
        pa.array([1, 2, 3], pa.int8()).dictionary_encode(),
        pa.array(["c1", "c2", "c3"], pa.large_string()),
    ]
)


@st.composite
def parquet_documents(draw) -> bytes:
    names = draw(st.lists(st.sampled_from(COLUMNS[:6]), min_size=1, max_size=6, unique=True))
    table = pa.table({name: draw(arrow_columns) for name in names})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    content = buffer.getvalue()
    damage = draw(st.sampled_from(["none", "none", "truncate", "flip"]))
    if damage == "truncate":
        content = content[: draw(st.integers(0, len(content) - 1))]
    elif damage == "flip":
        position = draw(st.integers(0, len(content) - 1))
        content = content[:position] + bytes([content[position] ^ 0xFF]) + content[position + 1 :]
    return content


# A store's export read with its rules: returns netted, guest rows skipped.
EXPORT = StoreFormat(returns="net", rows_without_customer="skip")


def check_loaded_or_refused(path, on_bad_rows: str, store_format: StoreFormat | None = None) -> None:
    """The contract under test: a valid log, or a DataError naming the file; nothing else."""
    try:
        log = load_purchases(path, on_bad_rows=on_bad_rows, store_format=store_format)
    except DataError as error:
        assert str(path) in str(error) and error.reason
        event("refused: " + error.reason[:50])
        return
    event("loaded" + (" with rows skipped" if log.skipped else ""))
    assert len(log) > 0
    for vocabulary in (log.customers, log.items):
        ids = vocabulary.ids.tolist()
        assert all(isinstance(i, str) and 0 < len(i) <= MAX_ID_LENGTH and not CONTROL.search(i) for i in ids)
    returns = store_format is not None and store_format.returns == "net"
    assert np.all(np.isfinite(log.weight)) and np.all((log.weight != 0) if returns else (log.weight > 0))
    assert all(isinstance(count, int) and count > 0 for count in log.skipped.values())


@FUZZ
@given(content=csv_documents(), on_bad_rows=st.sampled_from(["error", "skip"]), store_format=st.sampled_from([None, EXPORT]))
def test_any_csv_loads_or_raises_data_error(tmp_path, content, on_bad_rows, store_format):
    path = tmp_path / "purchases.csv"
    path.write_bytes(content)
    check_loaded_or_refused(path, on_bad_rows, store_format)


@FUZZ
@given(content=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".parquet"]))
def test_random_bytes_load_or_raise_data_error(tmp_path, content, suffix):
    path = tmp_path / f"purchases{suffix}"
    path.write_bytes(content)
    check_loaded_or_refused(path, "skip")


@FUZZ
@given(content=parquet_documents(), on_bad_rows=st.sampled_from(["error", "skip"]), store_format=st.sampled_from([None, EXPORT]))
def test_any_parquet_loads_or_raises_data_error(tmp_path, content, on_bad_rows, store_format):
    path = tmp_path / "purchases.parquet"
    path.write_bytes(content)
    check_loaded_or_refused(path, on_bad_rows, store_format)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(content=csv_documents(break_header=False))
def test_training_on_any_csv_publishes_a_whole_model_or_nothing(tmp_path_factory, content):
    folder = tmp_path_factory.mktemp("train")
    data, models_dir = folder / "purchases.csv", folder / "models"
    data.write_bytes(content)
    models_dir.mkdir()
    try:
        result = train(data, algorithm="popular", models_dir=models_dir, on_bad_rows="skip")
    except DataError:
        assert list(models_dir.iterdir()) == [], "a failed training run left something in the models folder"
        event("training refused")
        return
    event("model published")
    assert [p.name for p in models_dir.iterdir()] == [result.path.name]
    load_model(result.path)  # every checksum verifies


def test_huge_and_duplicated_fields_have_clear_errors(tmp_path):
    path = tmp_path / "purchases.csv"
    path.write_text("customer_id,item_id,customer_id\nc1,a1,c2\n")
    with pytest.raises(DataError, match="more than once"):
        load_purchases(path)
    path.write_text("customer_id,item_id\n" + "c" * (MAX_ID_LENGTH + 1) + ",a1\n")
    with pytest.raises(DataError, match=f"longer than {MAX_ID_LENGTH}"):
        load_purchases(path)
    path.write_text("customer_id,item_id\n" + "c" * 1_000_000 + ",a1\n")
    with pytest.raises(DataError, match="line 2, column 'customer_id': is longer"):
        load_purchases(path)


def test_bad_bytes_are_blamed_on_their_line_and_utf16_is_named(tmp_path):
    path = tmp_path / "purchases.csv"
    path.write_bytes(b"customer_id,item_id\nc1,a1\nc2,a\xff2\n")
    with pytest.raises(DataError, match="line 3: is not valid UTF-8"):
        load_purchases(path)
    path.write_bytes("customer_id,item_id\nc1,a1\n".encode("utf-16"))
    with pytest.raises(DataError, match="line 1: is UTF-16 text; save the file as UTF-8"):
        load_purchases(path)


def test_timestamps_out_of_range_are_bad_rows_not_garbage(tmp_path):
    path = tmp_path / "purchases.csv"
    path.write_text("customer_id,item_id,timestamp\nc1,a1,1740823200\nc2,a2,99999999999999999999\n")
    with pytest.raises(DataError, match="line 3, column 'timestamp'"):
        load_purchases(path)
    log = load_purchases(path, on_bad_rows="skip")
    assert log.timestamp.tolist() == [1740823200] and log.skipped == {"timestamp is neither ISO 8601 nor epoch seconds": 1}


def test_ids_with_control_characters_are_bad_rows_like_in_the_api(tmp_path):
    path = tmp_path / "purchases.csv"
    path.write_text("customer_id,item_id\nc1,a1\nc\x1b2,a2\nc3,a\u00853\n")
    with pytest.raises(DataError, match="line 3, column 'customer_id': contains control characters"):
        load_purchases(path)
    log = load_purchases(path, on_bad_rows="skip")
    assert log.customers.ids.tolist() == ["c1"]
    assert log.skipped == {"customer_id contains control characters": 1, "item_id contains control characters": 1}


def test_ids_of_spaces_alone_are_bad_rows_like_in_the_api(tmp_path):
    path = tmp_path / "purchases.csv"
    path.write_text("customer_id,item_id\nc1,a1\n   ,a2\nc3, \nc4, a4 \n")
    with pytest.raises(DataError, match=r"line 3, column 'customer_id': is only spaces \(value '   '\); a row without a customer is skipped with --rows-without-customer skip"):
        load_purchases(path)
    log = load_purchases(path, on_bad_rows="skip")
    assert log.customers.ids.tolist() == ["c1", "c4"] and log.items.ids.tolist() == ["a1", " a4 "]  # spaces around an id are kept
    assert log.skipped == {"customer_id is only spaces": 1, "item_id is only spaces": 1}


def test_gzipped_csv_reads_like_plain_csv(tmp_path):
    import gzip

    path = tmp_path / "purchases.csv.gz"
    path.write_bytes(gzip.compress(b"customer_id,item_id\nc1,a1\nc2,a2\n"))
    assert load_purchases(path).customers.ids.tolist() == ["c1", "c2"]
    path.write_bytes(gzip.compress(b"customer_id,item_id\nc1,a1\nc2,a2\n")[:-12])
    with pytest.raises(DataError, match="cannot be read"):
        load_purchases(path)
