"""Apache Spark helpers: sessions, reading purchases and the event store, weights, id indexing, factors.

pyspark is an optional extra (``pip install .[spark]``, Java 17); it is imported
inside the functions only, so ``import recommender`` never needs it. Everything
here runs unchanged on ``local[N]`` and on a cluster (``spark-submit``); paths are
whatever Spark reads (local, ``hdfs://``, ``s3a://``).

The weight rule is :mod:`recommender.weights`' and the id rules :mod:`recommender.ids`',
applied to Spark columns.
"""

from __future__ import annotations

import math
import os
import re
import sys
import tempfile
from typing import NamedTuple

import numpy as np

from .catalog import PRICE_TEXT, Catalog, catalog_of
from .errors import DataError
from .ids import ONLY_SPACES, WHOLE_FLOAT_TEXT, spark_id_is_invalid
from .store_format import PURCHASE_FIELDS, StoreFormat
from .timestamps import spark_parse_timestamps
from .vocabulary import IdVocabulary
from .weights import DEFAULT_EVENT_WEIGHTS, MOST_HALVINGS, SECONDS_PER_DAY, HistoryWeighting, spark_weigh_events

MASTER_ENV = "RECOMMENDER_SPARK_MASTER"
SPARK_MISSING = "Apache Spark support needs pyspark and Java 17: pip install 'recommender[spark]' (see README, 'Spark')"


def require_pyspark():
    """Import pyspark or raise ImportError with the install command."""
    try:
        import pyspark
    except ImportError:
        raise ImportError(SPARK_MISSING) from None
    return pyspark


def spark_session(master: str | None = None, app_name: str = "recommender"):
    """The active session, or a new one.

    The master is ``master``, else ``$RECOMMENDER_SPARK_MASTER``, else the one
    ``spark-submit`` chose, else ``local[*]`` (every core of this machine).
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    builder = SparkSession.builder.appName(app_name)
    master = master or os.environ.get(MASTER_ENV)
    if master is None and "PYSPARK_GATEWAY_PORT" not in os.environ:  # not launched by spark-submit
        master = "local[*]"
    if master:
        builder = builder.master(master)
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    if master and master.startswith("local"):
        # Local Python workers must run this interpreter (and so its packages); on a
        # cluster spark-submit's spark.pyspark.python (a shipped venv) decides.
        # pyspark reads PYSPARK_PYTHON (not the conf) for the workers' interpreter;
        # a local job needs no network address, so skip resolving the host name.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.config("spark.pyspark.python", os.environ["PYSPARK_PYTHON"])
        builder = builder.config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "8")
        # ALS's lineage grows with every iteration; serialising it recurses deeply, and
        # the JVM's default 1 MB thread stack can overflow on it.
        builder = builder.config("spark.driver.extraJavaOptions", "-Xss64m")
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    # Purchase times without an offset are UTC, as the file loader reads them.
    session.conf.set("spark.sql.session.timeZone", "UTC")
    if master and master.startswith("local") and not session.sparkContext.getCheckpointDir():
        # Checkpoints cut ALS's lineage every few iterations (Spark ignores the
        # interval without a checkpoint folder).
        session.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="recommender-spark-checkpoints-"))
    return session


def read_purchases(spark, path: str, file_format: str | None = None, store_format: StoreFormat | None = None,
                   fields: tuple[str, ...] = PURCHASE_FIELDS):
    """Purchases as a DataFrame with the loader's field names and string ids (Parquet, or CSV with a header).

    ``store_format`` maps the fields to the file's own columns; ids stored as floats become
    whole numbers as in :func:`recommender.ids.arrow_float_ids` (a value that is not whole
    becomes an invalid id, a bad row). ``fields``: the ones to read when the file has them
    (:data:`recommender.catalog.CATALOG_COLUMNS` for the catalog on the same lines).
    """
    from pyspark.sql import functions as F

    store_format = store_format or StoreFormat()
    file_format = file_format or ("csv" if str(path).lower().rstrip("/").endswith((".csv", ".csv.gz")) else "parquet")
    if file_format not in ("csv", "parquet"):
        raise ValueError(f"file format must be csv or parquet, not {file_format!r}")
    from pyspark.errors import AnalysisException

    try:
        if file_format == "csv":
            # Every column as a string: ids are never cast to numbers ("007" stays "007").
            frame = spark.read.option("header", True).option("inferSchema", False).csv(str(path))
        else:
            frame = spark.read.parquet(str(path))
    except AnalysisException as error:
        if error.getCondition() == "PATH_NOT_FOUND":  # a path on HDFS or S3 can only be checked by Spark
            raise DataError("does not exist", path=path) from None
        raise
    taken = set(store_format.columns.values())
    ids = [name for name in ("customer_id", "item_id") if name in fields]
    for name in (*ids, *store_format.columns):
        if name in fields and store_format.source(name) not in frame.columns:
            raise DataError(f"required column is missing (found: {', '.join(frame.columns)})", path=path, column=store_format.source(name))
    fields = [name for name in fields if (name in store_format.columns or name not in taken) and store_format.source(name) in frame.columns]
    frame = frame.select(*[F.col(f"`{store_format.source(name)}`").alias(name) for name in fields])
    types = dict(frame.dtypes)
    for name in ids:
        column = F.col(name)
        if types[name] in ("float", "double"):
            whole = ~F.isnan(column) & (column == F.floor(column)) & (F.abs(column) < 2.0**53)
            frame = frame.withColumn(name, F.when(whole, column.cast("long").cast("string")))
        elif types[name] == "string" and _written_as_floats(frame, name):
            frame = frame.withColumn(name, F.regexp_replace(column, r"\.0+$", ""))
    return frame


def _written_as_floats(frame, name: str) -> bool:
    """The loader's rule for text ids: every non-blank value is digits and ``.0``."""
    from pyspark.sql import functions as F

    column = F.col(name)
    present = (F.length(column) > 0) & ~column.rlike(ONLY_SPACES)
    head = [row[0] for row in frame.select(column).where(present).limit(100).collect()]
    if not head or not all(value is not None and re.match(WHOLE_FLOAT_TEXT, value) for value in head):
        return False
    return frame.where(present & ~column.rlike(WHOLE_FLOAT_TEXT)).limit(1).count() == 0


class Weighed(NamedTuple):
    """What :func:`purchase_weights` returns."""

    frame: object  # DataFrame (customer_id, item_id, weight): one row per cell with a weight left
    skipped: dict  # rows dropped, by reason
    newest: int | None  # the newest kept event's epoch seconds (None: the data has no times)
    events: int  # the rows kept (the file's and the event store's), as local training counts them
    erased: int  # customers left out because the erasure list names them


def stored_events(spark, location, event_weights: dict[str, float] | None = None):
    """The event store's events at ``location`` as rows :func:`purchase_weights` adds to a
    file's, (customer_id, item_id, weight, seconds): the events local training takes
    (:func:`recommender.events.training_data.weighed_events`), weighed as it weighs them.
    Read here, not by the executors: the store is the API's database. Returns the DataFrame
    and the newest event id read (0: none), for the manifest's ``events_through_id``."""
    import pyarrow as pa

    from .events.training_data import weighed_events

    events, weights, through = weighed_events(location, DEFAULT_EVENT_WEIGHTS if event_weights is None else event_weights)
    table = pa.table({
        "customer_id": pa.array(events["customer_id"].tolist(), pa.string()),
        "item_id": pa.array(events["item_id"].tolist(), pa.string()),
        "weight": pa.array(weights, pa.float64()),
        "seconds": pa.array(events["timestamp"], pa.int64()),
    })
    return spark.createDataFrame(table), through


def erasure_keys(spark, location):
    """The store's erasure list as a one-column DataFrame (``key``: the SHA-256 of a customer
    id, :func:`recommender.events.records.customer_key`), and the newest erasure id (0: none)."""
    import pyarrow as pa

    from .events.training_data import read_erasures

    keys, through = read_erasures(location)
    return spark.createDataFrame(pa.table({"key": pa.array(sorted(keys), pa.string())})), through


def purchase_weights(frame, event_weights: dict[str, float] | None = None, on_bad_rows: str = "error", path=None,
                     store_format: StoreFormat | None = None, weighting: HistoryWeighting | None = None,
                     stored=None, erased=None) -> Weighed:
    """Aggregate events into (customer_id, item_id, weight) with the library's weight rule.

    Rows with an invalid id (empty, too long, control characters), an unknown event type,
    a quantity that is not a positive number or a time that is neither ISO 8601 nor epoch
    seconds stop the job (``on_bad_rows='error'``) or are dropped (``'skip'``).
    ``store_format`` as in the file loader: with ``returns='net'`` a negative quantity is a
    return, netted out (:func:`recommender.weights.net_returns`); with
    ``rows_without_customer='skip'`` rows without a customer id are dropped and counted, and
    so are rows of the ``not_products`` codes. ``weighting`` (recency, repeats) as
    :meth:`recommender.interactions.Interactions.from_log` applies it.
    ``stored``: the event store's rows (:func:`stored_events`), added to the file's (their
    times dropped when the file has none, as locally); ``erased``: the erasure list's keys
    (:func:`erasure_keys`), whose customers' rows are left out before anything is weighed.
    """
    from pyspark.sql import functions as F

    store_format = store_format or StoreFormat()
    weighting = weighting or HistoryWeighting()
    weights = dict(DEFAULT_EVENT_WEIGHTS if event_weights is None else event_weights)
    column = lambda name: F.col(name) if name in frame.columns else None  # noqa: E731
    returns = store_format.returns == "net"
    weight = spark_weigh_events(column("event_type"), column("quantity"), weights, returns=returns)
    timed = "timestamp" in frame.columns
    if weighting.half_life_days is not None and not timed:
        raise DataError("a half-life needs event times: the purchase data has no timestamp column", path=path)
    seconds = spark_parse_timestamps(F.col("timestamp"), dict(frame.dtypes)["timestamp"]) if timed else F.lit(0).cast("long")
    events = frame.select(
        F.col("customer_id").cast("string").alias("customer_id"), F.col("item_id").cast("string").alias("item_id"),
        weight.alias("weight"), seconds.alias("seconds"),
    )
    guest = F.lit(False)
    if store_format.rows_without_customer == "skip":
        guest = F.col("customer_id").isNull() | (F.length("customer_id") == 0) | F.col("customer_id").rlike(ONLY_SPACES)
    not_product = F.lit(False)
    if store_format.not_products:  # a guest row of such a code counts as a guest row, as in the file loader
        not_product = F.coalesce(F.col("item_id").isin(list(store_format.not_products)), F.lit(False)) & ~guest
    bad = spark_id_is_invalid(F.col("customer_id")) | spark_id_is_invalid(F.col("item_id"))
    bad = bad | F.col("weight").isNull() | F.isnan("weight") | F.col("seconds").isNull()
    events = events.withColumn("_guest", guest).withColumn("_not_product", not_product).withColumn("_bad", ~F.col("_guest") & ~F.col("_not_product") & bad)
    if stored is not None:  # the API checked these rows' ids when it took them
        added = stored.withColumn("seconds", F.col("seconds") if timed else F.lit(0).cast("long"))
        events = events.unionByName(added.select(*(F.lit(False).alias(flag) if flag.startswith("_") else F.col(flag) for flag in events.columns)))
    kept_row = ~F.col("_guest") & ~F.col("_not_product") & ~F.col("_bad")
    if erased is not None:
        named = erased.select(F.col("key").alias("_key"), F.lit(True).alias("_erased"))
        events = events.join(F.broadcast(named), F.sha2(F.col("customer_id"), 256) == F.col("_key"), "left").drop("_key")
        events = events.withColumn("_erased", F.coalesce(F.col("_erased"), F.lit(False)) & kept_row)
    else:
        events = events.withColumn("_erased", F.lit(False))
    events = events.cache()
    # Recency is measured from the newest kept event, whatever its weight, as in the file loader.
    kept_row = kept_row & ~F.col("_erased")
    counts = events.agg(*(F.sum(F.col(flag).cast("long")).alias(flag) for flag in ("_guest", "_not_product", "_bad")),
                        F.max(F.when(kept_row, F.col("seconds"))).alias("newest"), F.sum(kept_row.cast("long")).alias("kept"),
                        F.countDistinct(F.when(F.col("_erased"), F.col("customer_id"))).alias("erased")).first()
    guests, not_products, dropped = (int(counts[flag] or 0) for flag in ("_guest", "_not_product", "_bad"))
    if dropped and on_bad_rows == "error":
        quantity = "a zero quantity" if returns else "a quantity that is not a positive number"
        time = ", a time that is neither ISO 8601 nor epoch seconds" if timed else ""
        raise DataError(
            f"{dropped} rows have an invalid id, an unknown event type{time} or {quantity}; use --on-bad-rows skip to drop them",
            path=path,
        )
    skipped = {reason: count for reason, count in (("no customer", guests), ("not a product", not_products), ("bad rows", dropped)) if count}
    newest = counts["newest"] if timed else None
    good = events.filter(kept_row & (F.col("weight") != 0))
    summed = good.groupBy("customer_id", "item_id").agg(_cell_weight(weighting, newest).alias("weight"))
    if weighting.repeats == "log":
        summed = summed.withColumn("weight", F.log1p(F.col("weight")) / math.log(2.0))  # as HistoryWeighting.repeated: a faded cell stays above 0
    elif weighting.repeats == "once":
        summed = summed.withColumn("weight", F.least(F.col("weight"), F.lit(1.0)))
    return Weighed(summed.filter(F.col("weight") > 0), skipped, newest, int(counts["kept"] or 0), int(counts["erased"] or 0))


def _cell_weight(weighting: HistoryWeighting, newest: int | None):
    """A customer-item cell's summed weight, returns netted and purchases decayed
    (:func:`recommender.weights.net_returns` and :meth:`HistoryWeighting.decay`, as aggregates)."""
    from pyspark.sql import functions as F

    positive = F.when(F.col("weight") > 0, F.col("weight")).otherwise(0.0)
    bought, returned = F.sum(positive), F.sum(F.when(F.col("weight") < 0, -F.col("weight")).otherwise(0.0))
    if weighting.half_life_days is None:
        return F.greatest(bought - returned, F.lit(0.0))
    age_days = (F.lit(newest) - F.col("seconds")).cast("double") / SECONDS_PER_DAY
    decay = F.pow(F.lit(2.0), F.greatest(-age_days / weighting.half_life_days, F.lit(MOST_HALVINGS)))
    kept_share = F.when(bought > 0, F.least(F.greatest(1.0 - returned / bought, F.lit(0.0)), F.lit(1.0))).otherwise(0.0)
    return F.sum(positive * decay) * kept_share


def catalog_from_purchases(frame, items: IdVocabulary, path=None) -> Catalog:
    """The catalog on a purchase file's own lines, by :func:`recommender.catalog.catalog_from_purchases`'
    rule: per item the name, category and positive price on most of its lines, a tie to the
    later line (in the order Spark reads the file). ``frame``: :func:`read_purchases` with
    ``fields=CATALOG_COLUMNS``. Only one row per item and field leaves Spark."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    # Cached: each field below is one pass over the lines (and a price's check another).
    frame = frame.withColumn("_line", F.monotonically_increasing_id()).where(~spark_id_is_invalid(F.col("item_id"))).cache()
    values = {}
    for field in ("name", "category", "price"):
        if field not in frame.columns:
            continue
        value = F.trim(F.col(field).cast("string"))
        given = F.length(value) > 0
        if field == "price":
            if dict(frame.dtypes)["price"] == "string":
                bad = frame.where(given & ~value.rlike(PRICE_TEXT)).count()
                if bad:
                    raise DataError(f"{bad} lines have a price that is not a number", path=path, column="price")
                value = value.try_cast("double")
            else:
                value = F.col("price").cast("double")
            given = value.isNotNull() & ~F.isnan(value) & (value > 0)
        counted = frame.where(given).groupBy("item_id", value.alias("value")).agg(F.count("*").alias("lines"), F.max("_line").alias("last"))
        most = Window.partitionBy("item_id").orderBy(F.desc("lines"), F.desc("last"))
        best = counted.withColumn("_rank", F.row_number().over(most)).where(F.col("_rank") == 1).select("item_id", "value")
        values[field] = {row["item_id"]: row["value"] for row in best.collect()}
    frame.unpersist()
    return catalog_of(items, values)


def index_ids(weights):
    """Add integer ``customer`` and ``item`` columns; return (DataFrame, customer ids, item ids).

    Ids stay strings: the integer is only the position in the returned (alphabetical)
    label arrays, which become the model's vocabularies.
    """
    from pyspark.ml.feature import StringIndexer
    from pyspark.sql import functions as F

    indexer = StringIndexer(
        inputCols=["customer_id", "item_id"], outputCols=["customer_index", "item_index"], stringOrderType="alphabetAsc"
    ).fit(weights)
    customer_ids, item_ids = (np.asarray(labels, dtype=str) for labels in indexer.labelsArray)
    indexed = indexer.transform(weights).select(
        F.col("customer_index").cast("int").alias("customer"), F.col("item_index").cast("int").alias("item"), "weight"
    )
    return indexed, customer_ids, item_ids


def factor_matrix(factors_frame, rows: int, rank: int) -> np.ndarray:
    """Collect Spark's (id, features) factors into a dense float32 matrix (rows x rank)."""
    table = factors_frame.toArrow()
    matrix = np.zeros((rows, rank), dtype=np.float32)
    ids = table.column("id").to_numpy()
    features = table.column("features").combine_chunks()
    values = features.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    matrix[ids] = values.reshape(len(ids), rank)
    return matrix
