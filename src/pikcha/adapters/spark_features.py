"""The feature table computed by Spark over the warehouse's ``current_*`` views.

The views travel from ClickHouse to Spark as Arrow: ClickHouse encodes the
columns the features need in its ``Arrow`` format, clickhouse-connect hands
them over as a :class:`pyarrow.Table`, and ``SparkSession.createDataFrame``
ships that table to the JVM as Arrow record batches, one partition each. No
value becomes a Python object on the way and no Python worker runs on the
executors; but every row passes through the driver, which holds the views
once as Arrow (``docs/spark.md`` has the sizes measured).

On the way, pyarrow numbers the distinct stores, cities and category codes
(``store_no``, ``city_no``, ``code_no``). Spark then unites a purchase's
categories as bits of a ``bigint`` and tells one store from several by
``min`` and ``max`` of a number: every aggregate stays a hash aggregate,
where ``collect_set`` would fall back to sorting and cost about 40% more CPU.

Types stay exact: money is ``DecimalType(18, 2)``, quantities
``DecimalType(18, 3)``, and times ``TIMESTAMP_NTZ`` holding the shop's wall
clock as stored, so hours, weekdays and day windows never meet a time zone
(the session's is pinned to UTC all the same).
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pikcha.domain.errors import ConfigurationError, InfrastructureError
from pikcha.domain.features import FEATURE_NAMES, FeatureRow

if TYPE_CHECKING:
    import pyarrow as pa
    from clickhouse_connect.driver.client import Client
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import StructType

SPARK_EXTRA = "install the spark extra: pip install 'pikcha[spark]'"
NO_JAVA = "install Java 17 or later, or set PIKCHA_FEATURES=clickhouse"
CATEGORIES = ("bakery", "meat", "dairy", "fruits", "vegetables")
BITS = 63
"""Category codes per ``bigint`` mask; the sign bit stays unused."""

SOURCES: dict[str, tuple[tuple[str, str], ...]] = {
    "current_customers": (
        ("customer_id", "string"),
        ("registration_date", "timestamp_ntz"),
        ("is_loyalty_member", "boolean"),
    ),
    "current_products": (("product_id", "string"), ("is_organic", "boolean")),
    "current_purchases": (
        ("purchase_id", "string"),
        ("customer_id", "string"),
        ("store_id", "string"),
        ("store_city", "string"),
        ("purchase_datetime", "timestamp_ntz"),
        ("total_amount", "decimal(18,2)"),
        ("payment_method", "string"),
        ("is_delivery", "boolean"),
        ("line_count", "bigint"),
        ("quantity_total", "decimal(18,3)"),
    ),
    "current_purchase_items": (
        ("purchase_id", "string"),
        ("product_id", "string"),
        ("category_code", "string"),
    ),
}
"""The columns read from each view, with the Spark type each arrives as."""

NUMBERED: dict[str, tuple[tuple[str, str], ...]] = {
    "current_purchases": (("store_id", "store_no"), ("store_city", "city_no")),
    "current_purchase_items": (("category_code", "code_no"),),
}
"""Columns whose distinct values are numbered on the driver, and the number's
column (an ``int``, null for a null or empty category code)."""

# Rows dated after as_of can never count, so ClickHouse drops them before they
# travel; Spark applies the same filters again and owns the semantics.
PUSHED_DOWN = {
    "current_customers": "registration_date <= as_of",
    "current_purchases": "purchase_datetime <= as_of",
}


def source_query(view: str) -> str:
    """The SELECT that reads ``view`` for the features; binds ``{as_of:String}``."""
    columns = ", ".join(f"`{name}`" for name, _ in SOURCES[view])
    query = f"SELECT {columns} FROM {view}"
    where = PUSHED_DOWN.get(view)
    if where is None:
        return query

    return (
        f"WITH toDateTime64({{as_of:String}}, 6, 'UTC') AS as_of {query} WHERE {where}"
    )


def source_schema(view: str) -> StructType:
    """The Spark schema of a view as :func:`numbered` leaves it."""
    from pyspark.sql.types import (
        BooleanType,
        DataType,
        DecimalType,
        IntegerType,
        LongType,
        StringType,
        StructType,
        TimestampNTZType,
    )

    kinds: dict[str, DataType] = {
        "string": StringType(),
        "timestamp_ntz": TimestampNTZType(),
        "boolean": BooleanType(),
        "bigint": LongType(),
        "decimal(18,2)": DecimalType(18, 2),
        "decimal(18,3)": DecimalType(18, 3),
    }
    schema = StructType()
    for name, kind in SOURCES[view]:
        schema.add(name, kinds[kind], nullable=name == "category_code")
    for _, number in NUMBERED.get(view, ()):
        schema.add(number, IntegerType(), nullable=True)

    return schema


def numbered(view: str, table: pa.Table) -> tuple[pa.Table, list[str]]:
    """The table in one chunk with its numbered columns, and the values numbered
    last (the category codes, for the items)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = table.combine_chunks()
    values: list[str] = []
    for column, number in NUMBERED.get(view, ()):
        array = table.column(column).combine_chunks()
        if column == "category_code":
            array = pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)
        encoded = pc.dictionary_encode(array)
        table = table.append_column(number, encoded.indices.cast(pa.int32()))
        values = encoded.dictionary.to_pylist()

    return table, values


def java_problem() -> str | None:
    """Why no JVM can start here, or ``None`` when a ``java`` is found.

    Looks where pyspark's launcher looks: ``$JAVA_HOME/bin/java``, else
    ``java`` on ``PATH``.
    """
    home = os.environ.get("JAVA_HOME")
    if home:
        if (Path(home) / "bin" / "java").is_file():
            return None
        return f"JAVA_HOME={home} has no bin/java; fix JAVA_HOME or {NO_JAVA}"
    if shutil.which("java") is None:
        return (
            "Spark needs Java, but no java is on PATH and JAVA_HOME is unset; "
            f"{NO_JAVA}"
        )

    return None


def spark_problem() -> str | None:
    """Why Spark cannot run here (pyspark or Java missing), or ``None``."""
    if importlib.util.find_spec("pyspark") is None:
        return (
            f"pyspark is not installed; {SPARK_EXTRA}, or set "
            "PIKCHA_FEATURES=clickhouse"
        )

    return java_problem()


_lock = threading.Lock()
_running: dict[str, SparkSession] = {}


def spark_session(
    master: str = "local[*]",
    *,
    driver_memory: str | None = None,
    shuffle_partitions: int = 4,
) -> SparkSession:
    """The process's one SparkSession: started on first use, then reused.

    The first call decides the settings; a later call for another master is a
    ConfigurationError, since a process holds one SparkContext. For a
    ``local`` master ``SPARK_LOCAL_IP`` defaults to ``127.0.0.1``, so that
    nothing listens beyond loopback.
    """
    with _lock:
        for running, session in list(_running.items()):
            if getattr(session.sparkContext, "_jsc", None) is None:
                del _running[running]
            elif running != master:
                raise ConfigurationError(
                    f"PIKCHA_SPARK_MASTER={master}, but this process already runs "
                    f"Spark on {running}; use one master per process"
                )
            else:
                return session
        problem = spark_problem()
        if problem:
            raise ConfigurationError(problem)
        _running[master] = _start(master, driver_memory, shuffle_partitions)

        return _running[master]


def _start(
    master: str, driver_memory: str | None, shuffle_partitions: int
) -> SparkSession:
    from pyspark.sql import SparkSession

    local = master.startswith("local")
    if local:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    options = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.log.level": "ERROR",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.ansi.enabled": "true",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
        # The engine cuts its Arrow tables into batches itself (one per
        # partition); this only keeps Spark from cutting them again.
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(2**31 - 1),
    }
    if driver_memory:
        options["spark.driver.memory"] = driver_memory
    if local:
        # A local JVM short of heap can lose a scheduler thread and wait
        # forever; ending it turns that into an error the engine reports.
        options["spark.driver.extraJavaOptions"] = "-XX:+ExitOnOutOfMemoryError"
    builder = SparkSession.builder.master(master).appName("pikcha-features")
    for key, value in options.items():
        builder = builder.config(key, value)
    try:
        with _quiet():
            return builder.getOrCreate()
    except _spark_errors(OSError) as exc:
        raise InfrastructureError(
            f"Spark did not start on master {master}: {_first_line(exc)}; check "
            "that PIKCHA_SPARK_MASTER names a reachable Spark 4 master and that "
            "java is version 17 or later"
        ) from exc


class SparkFeatureEngine:
    """Computes the features in Spark from a ClickHouse warehouse's views.

    ``source`` is the clickhouse-connect client of a migrated warehouse; the
    engine borrows it and never closes it. The SparkSession is the process's
    one (:func:`spark_session`), started at the first :meth:`compute`.
    """

    name = "spark"

    def __init__(
        self,
        source: Client,
        master: str = "local[*]",
        *,
        driver_memory: str | None = None,
        shuffle_partitions: int = 4,
    ) -> None:
        problem = spark_problem()
        if problem:
            raise ConfigurationError(problem)
        self.master = master
        self.driver_memory = driver_memory
        self._source = source
        self._shuffle_partitions = shuffle_partitions

    def compute(self, as_of: datetime) -> list[FeatureRow]:
        wall_clock = as_of.replace(tzinfo=None)
        # ClickHouse first: a missing view shows before a JVM starts.
        fetched = [self._fetch(view, wall_clock) for view in SOURCES]
        spark = spark_session(
            self.master,
            driver_memory=self.driver_memory,
            shuffle_partitions=self._shuffle_partitions,
        )
        try:
            with _quiet():
                frames, codes = self._frames(spark, fetched)
                del fetched
                table = feature_frame(*frames, as_of=wall_clock, codes=codes).toArrow()
        except _spark_errors(OSError) as exc:
            raise InfrastructureError(
                f"Spark on {self.master} could not compute the features as of "
                f"{wall_clock.isoformat()}: {_first_line(exc)}; check "
                "PIKCHA_SPARK_MASTER, and give the driver more memory with "
                "PIKCHA_SPARK_DRIVER_MEMORY (about 2g per million purchases on a "
                "local master)"
            ) from exc

        return feature_rows(table)

    def _fetch(self, view: str, as_of: datetime) -> Any:
        """The view as Arrow, with :func:`numbered`'s columns and values."""
        from clickhouse_connect.driver.exceptions import (
            ClickHouseError,
            OperationalError,
        )

        try:
            table = self._source.query_arrow(
                source_query(view),
                parameters={"as_of": as_of.isoformat(sep=" ")},
                use_strings=True,
            )
        except ClickHouseError as exc:
            raise InfrastructureError(
                f"Spark could not read {view} from ClickHouse for the features as "
                f"of {as_of.isoformat()}: {exc}; check PIKCHA_WAREHOUSE and that "
                "its migrations are applied",
                transient=isinstance(exc, OperationalError),
            ) from exc

        return numbered(view, table)

    def _frames(
        self, spark: SparkSession, fetched: list[Any]
    ) -> tuple[list[DataFrame], list[str]]:
        import pyarrow as pa

        slices = max(spark.sparkContext.defaultParallelism, 1)
        frames: list[DataFrame] = []
        codes: list[str] = []
        for view, (table, values) in zip(SOURCES, fetched, strict=True):
            # About one batch per core: ClickHouse's blocks of some 65,000 rows
            # would each become a partition and a task.
            size = max(math.ceil(table.num_rows / slices), 50_000)
            batches = pa.Table.from_batches(table.to_batches(size), table.schema)
            frames.append(spark.createDataFrame(batches, source_schema(view)))
            codes = values or codes

        return frames, codes


def feature_frame(
    customers: DataFrame,
    products: DataFrame,
    purchases: DataFrame,
    items: DataFrame,
    *,
    as_of: datetime,
    codes: Sequence[str],
) -> DataFrame:
    """The feature table, unordered: ``customer_id`` and one ``tinyint`` per
    feature, from frames shaped as :func:`source_schema` says; ``codes[i]`` is
    the category code numbered ``i`` in the items."""
    from pyspark.sql import functions as F

    on = F.col
    count = F.count_if
    masks = range(math.ceil(len(codes) / BITS))

    def moment(when: datetime) -> Column:
        return F.lit(when.isoformat(sep=" ")).cast("timestamp_ntz")

    def since(days: int) -> Column:
        return on("purchase_datetime") > moment(as_of - timedelta(days=days))

    def bits(mask: int) -> Column:
        low = mask * BITS
        return F.when(
            on("code_no").between(low, low + BITS - 1),
            F.expr(f"shiftleft(1L, code_no - {low})"),
        )

    def has(category: str) -> Column:
        if category not in codes:
            return F.lit(False)
        mask, bit = divmod(codes.index(category), BITS)
        return F.coalesce(on(f"mask{mask}").bitwiseAND(1 << bit) != 0, F.lit(False))

    eligible = customers.where(on("registration_date") <= moment(as_of))
    organic = products.where("is_organic").select("product_id", F.lit(True).alias("o"))
    baskets = (
        items.join(F.broadcast(organic), "product_id", "left")
        .groupBy("purchase_id")
        .agg(
            F.bool_or(F.coalesce("o", F.lit(False))).alias("organic"),
            *(F.bit_or(bits(mask)).alias(f"mask{mask}") for mask in masks),
        )
    )
    visible = (
        purchases.where(on("purchase_datetime") <= moment(as_of))
        .join(eligible.select("customer_id"), "customer_id", "left_semi")
        .join(baskets, "purchase_id", "left")
        .select(
            "*",
            *(has(category).alias(category) for category in CATEGORIES),
            since(7).alias("in7"),
            since(14).alias("in14"),
            since(30).alias("in30"),
            since(90).alias("in90"),
            F.hour("purchase_datetime").alias("hour"),
        )
    )
    hour = on("hour")
    totals = visible.groupBy("customer_id").agg(
        F.count(F.lit(1)).alias("n"),
        F.sum("total_amount").alias("spent"),
        F.sum("quantity_total").alias("quantity"),
        F.sum(F.when(on("in7"), on("total_amount"))).alias("spent7"),
        count(on("in14")).alias("n14"),
        count(on("in30")).alias("n30"),
        count(on("in30") & ~on("in14")).alias("n14_30"),
        count(on("in90")).alias("n90"),
        count(on("in30") & on("dairy")).alias("dairy30"),
        count(on("in14") & on("fruits")).alias("fruits14"),
        count(on("in30") & on("fruits")).alias("fruits30"),
        count(on("in14") & on("vegetables")).alias("vegetables14"),
        count(on("in90") & on("meat")).alias("meat90"),
        count(on("bakery")).alias("bakery"),
        count(on("organic")).alias("organic"),
        count(on("is_delivery")).alias("delivery"),
        count(hour >= 20).alias("night"),
        count(hour < 10).alias("morning"),
        count((hour >= 7) & (hour < 9)).alias("early"),
        count(on("payment_method") == "cash").alias("cash"),
        count(on("payment_method") == "card").alias("card"),
        count(F.weekday("purchase_datetime") >= 5).alias("weekend"),
        count(on("line_count") == 1).alias("single"),
        (F.min("store_no") < F.max("store_no")).alias("stores"),
        (F.min("city_no") < F.max("city_no")).alias("cities"),
        sum((F.bit_count(F.bit_or(f"mask{mask}")) for mask in masks), F.lit(0)).alias(
            "kinds"
        ),
    )

    zeros: dict[str, object] = {"stores": False, "cities": False}
    zeros.update(dict.fromkeys(("spent", "spent7", "quantity"), Decimal(0)))

    def t(name: str) -> Column:
        """A total; zero, or false, for a customer without purchases."""
        return F.coalesce(on(name), F.lit(zeros.get(name, 0)))

    n = t("n")
    some = n >= 1
    values = (
        t("dairy30") > 0,
        t("fruits14") > 0,
        t("vegetables14") == 0,
        t("n30") >= 3,
        (t("n14_30") > 0) & (t("n14") == 0),
        on("registration_date") > moment(as_of - timedelta(days=30)),
        t("delivery") > 0,
        t("organic") > 0,
        some & (t("spent") > n * 1000),
        some & (t("spent") < n * 200),
        t("bakery") > 0,
        on("is_loyalty_member") & (n >= 3),
        t("cities"),
        t("night") > 0,
        t("morning") > 0,
        some & (10 * t("cash") > 7 * n),
        some & (10 * t("card") > 7 * n),
        some & (10 * t("weekend") >= 6 * n),
        some & (10 * (n - t("weekend")) >= 6 * n),
        some & (2 * t("single") >= n),
        t("kinds") >= 4,
        some & ~t("stores"),
        t("stores"),
        some & (t("quantity") >= 4 * n),
        t("early") > 0,
        n == 0,
        t("spent7") > Decimal(2000),
        t("fruits30") >= 3,
        (t("n90") > 0) & (t("meat90") == 0),
        t("spent") >= Decimal(10000),
    )

    return eligible.join(totals, "customer_id", "left").select(
        "customer_id",
        *(
            F.when(value, 1).otherwise(0).cast("tinyint").alias(name)
            for value, name in zip(values, FEATURE_NAMES, strict=True)
        ),
    )


def feature_rows(table: pa.Table) -> list[FeatureRow]:
    """Rows of a collected :func:`feature_frame`, sorted by ``customer_id``."""
    ids: list[str] = table.column("customer_id").to_pylist()
    columns = [table.column(name).to_pylist() for name in FEATURE_NAMES]
    rows = [
        FeatureRow(customer_id, tuple(values))
        for customer_id, *values in zip(ids, *columns, strict=True)
    ]
    # Sorted here, in code point order as the reference sorts, which spares
    # Spark a range shuffle.
    rows.sort(key=lambda row: row.customer_id)

    return rows


def _spark_errors(*more: type[Exception]) -> tuple[type[Exception], ...]:
    """What Spark raises: its own errors, and Java's as they cross Py4J."""
    from py4j.protocol import Py4JError  # type: ignore[import-untyped]
    from pyspark.errors import PySparkException

    return PySparkException, Py4JError, *more


@contextmanager
def _quiet() -> Iterator[None]:
    # pyspark warns about the installed pandas on code paths this engine never
    # takes (it needs no pandas); keep that out of the command's output.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "PySpark does not yet", FutureWarning)
        yield


def _first_line(exc: BaseException) -> str:
    # Py4J's own message only names the Java call; the Java error says why.
    java = getattr(exc, "java_exception", None)
    text = str(java.toString() if java is not None else exc).strip()

    return text.splitlines()[0] if text else type(exc).__name__
