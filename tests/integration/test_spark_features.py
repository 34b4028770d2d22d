"""The Spark engine equals the ClickHouse SQL engine and the reference, row for row.

The clean rows go straight into the warehouse's clean tables (one version
each), so that the three engines read exactly the same data: chDB in a
temporary directory, or the server named by ``PIKCHA_TEST_CLICKHOUSE``. Spark
runs in local mode on the machine's Java, one session for the whole test run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, given, settings

from pikcha.adapters.clickhouse.features import ClickHouseFeatureEngine
from pikcha.adapters.clickhouse.warehouse import ClickHouseWarehouse
from pikcha.adapters.memory_warehouse import InMemoryWarehouse
from pikcha.adapters.reference_features import ReferenceFeatureEngine
from pikcha.adapters.spark_features import (
    SparkFeatureEngine,
    spark_problem,
    spark_session,
)
from pikcha.application.generate import GeneratorConfig, iter_records
from pikcha.domain.cleaning import (
    CleanCustomer,
    CleanProduct,
    CleanPurchase,
    Rejection,
    clean,
)
from pikcha.domain.entities import Entity, parse_record
from pikcha.domain.errors import ConfigurationError, InfrastructureError
from pikcha.domain.features import FeatureRow, compute_features
from pikcha.entrypoints.container import make_features
from pikcha.entrypoints.settings import Settings
from tests.integration.test_clickhouse_features import (
    Shop,
    amounts,
    clocks,
    load,
    others,
    shares,
    table,
    windows,
    worlds,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

World = tuple[list[CleanCustomer], list[CleanProduct], list[CleanPurchase], datetime]
GENERATED_NOW = datetime(2025, 9, 30, 12, 0)


@pytest.fixture(scope="session")
def spark() -> SparkSession:
    """The process's Spark session, started once for the whole run."""
    problem = spark_problem()
    if problem:
        pytest.skip(f"Spark cannot run here: {problem}")

    return spark_session()


@pytest.fixture(scope="module")
def dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    configured = os.environ.get("PIKCHA_TEST_CLICKHOUSE")

    return configured or f"chdb://{tmp_path_factory.mktemp('chdb')}"


@pytest.fixture(scope="module")
def warehouse(dsn: str) -> Iterator[ClickHouseWarehouse]:
    warehouse = ClickHouseWarehouse(dsn)
    warehouse.migrate()
    yield warehouse
    warehouse.close()


@pytest.fixture(scope="module")
def client(warehouse: ClickHouseWarehouse) -> Client:
    return warehouse.client


def three_tables(
    client: Client,
    customers: Sequence[CleanCustomer],
    products: Sequence[CleanProduct],
    purchases: Sequence[CleanPurchase],
    as_of: datetime,
) -> tuple[list[FeatureRow], list[FeatureRow], list[FeatureRow]]:
    """Spark's, ClickHouse's and the reference's tables of the same clean rows."""
    load(client, customers, products, purchases)

    return (
        SparkFeatureEngine(client).compute(as_of),
        ClickHouseFeatureEngine(client).compute(as_of),
        compute_features(customers, purchases, products, as_of),
    )


def assert_all_agree(
    spark_rows: list[FeatureRow],
    clickhouse_rows: list[FeatureRow],
    reference_rows: list[FeatureRow],
) -> None:
    expected_ids = [row.customer_id for row in reference_rows]
    assert [row.customer_id for row in spark_rows] == expected_ids
    assert [row.customer_id for row in clickhouse_rows] == expected_ids
    assert table(spark_rows) == table(reference_rows)
    assert table(clickhouse_rows) == table(reference_rows)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(world=worlds())
def test_spark_equals_clickhouse_and_reference_on_generated_data(
    spark: SparkSession, client: Client, world: World
) -> None:
    """On data around every boundary, the three engines give the same table."""
    customers, products, purchases, as_of = world

    assert_all_agree(*three_tables(client, customers, products, purchases, as_of))


@pytest.mark.parametrize(
    "as_of",
    [
        pytest.param(datetime(2026, 3, 18, 20, 0, 0, 500_000), id="wednesday-evening"),
        pytest.param(datetime(2026, 3, 22), id="sunday-midnight"),
        pytest.param(datetime(2026, 3, 28, 9, 0, 0, 999_999), id="saturday-morning"),
    ],
)
def test_spark_equals_the_others_on_every_boundary(
    spark: SparkSession, client: Client, as_of: datetime
) -> None:
    """Customers built on each edge of each feature get the same values."""
    shop = Shop(as_of)
    for build in (windows, clocks, shares, amounts, others):
        build(shop)

    assert_all_agree(
        *three_tables(client, shop.customers, shop.products, shop.purchases, as_of)
    )


@pytest.fixture(scope="module")
def generated_shop() -> tuple[
    list[CleanCustomer], list[CleanProduct], list[CleanPurchase]
]:
    """100,000 generated purchases of 20,000 customers, through the cleaning rules."""
    config = GeneratorConfig(
        seed=5, now=GENERATED_NOW, purchases=100_000, customers=20_000
    )
    rows: dict[Entity, list[object]] = {entity: [] for entity in Entity}
    for entity, document in iter_records(config):
        outcome = clean(entity, parse_record(entity, document), GENERATED_NOW)
        if not isinstance(outcome, Rejection):
            rows[entity].append(outcome)

    return (
        rows[Entity.CUSTOMER],  # type: ignore[return-value]
        rows[Entity.PRODUCT],
        rows[Entity.PURCHASE],
    )


@pytest.mark.slow
def test_spark_equals_the_others_on_100000_generated_purchases(
    spark: SparkSession,
    client: Client,
    generated_shop: tuple[list[CleanCustomer], list[CleanProduct], list[CleanPurchase]],
) -> None:
    """On a generated shop of 100,000 purchases every column of every row agrees."""
    customers, products, purchases = generated_shop
    as_of = datetime(2025, 9, 30, 23, 59, 59, 999_999)

    spark_rows, clickhouse_rows, reference_rows = three_tables(
        client, customers, products, purchases, as_of
    )

    assert len(purchases) == 100_000
    assert len(reference_rows) == 20_000
    assert_all_agree(spark_rows, clickhouse_rows, reference_rows)


def test_spark_engine_is_named_spark(spark: SparkSession, client: Client) -> None:
    """The engine reports its name for manifests and the run summary."""
    assert SparkFeatureEngine(client).name == "spark"


def test_spark_engine_returns_no_rows_for_an_empty_warehouse(
    spark: SparkSession, client: Client
) -> None:
    """With no clean customers the table is empty."""
    load(client, [], [], [])

    assert SparkFeatureEngine(client).compute(datetime(2026, 3, 18)) == []


def test_spark_engine_translates_a_missing_view(
    spark: SparkSession, client: Client, dsn: str
) -> None:
    """A warehouse without the migrations raises InfrastructureError, chained."""
    client.command("CREATE DATABASE IF NOT EXISTS pikcha_spark_unmigrated")
    bare = clickhouse_connect.get_client(dsn=dsn, database="pikcha_spark_unmigrated")
    try:
        with pytest.raises(InfrastructureError, match="current_customers") as caught:
            SparkFeatureEngine(bare).compute(datetime(2026, 3, 18))
    finally:
        bare.close()

    assert caught.value.__cause__ is not None


def test_missing_java_names_the_fix(
    client: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without java on PATH or JAVA_HOME, the engine says to install Java 17."""
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(ConfigurationError, match="install Java 17 or later, or set "):
        SparkFeatureEngine(client)


def test_a_java_home_without_java_is_named(
    client: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A JAVA_HOME with no bin/java is named in the error."""
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))

    with pytest.raises(ConfigurationError, match=f"JAVA_HOME={tmp_path}"):
        SparkFeatureEngine(client)


def test_missing_pyspark_names_the_extra(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without pyspark, the engine says which extra to install."""
    monkeypatch.setitem(sys.modules, "pyspark", None)

    with pytest.raises(ConfigurationError, match=r"pip install 'pikcha\[spark\]'"):
        SparkFeatureEngine(client)


def test_one_process_keeps_one_master(spark: SparkSession) -> None:
    """Asking for another master than the running one is a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="local\\[1\\]"):
        spark_session("local[1]")


def test_the_session_is_reused(spark: SparkSession) -> None:
    """Every engine of the process shares the one session."""
    assert spark_session() is spark


def test_auto_picks_spark_when_java_and_pyspark_are_present(
    spark: SparkSession, warehouse: ClickHouseWarehouse
) -> None:
    """PIKCHA_FEATURES=auto computes with Spark where it can run."""
    engine = make_features(Settings(features="auto"), warehouse)

    assert engine.name == "spark"


def test_auto_falls_back_to_clickhouse_without_java(
    warehouse: ClickHouseWarehouse, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """PIKCHA_FEATURES=auto computes in ClickHouse when no Java is found."""
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))

    engine = make_features(Settings(features="auto"), warehouse)

    assert engine.name == "clickhouse"


def test_auto_uses_the_reference_on_a_warehouse_in_memory() -> None:
    """With no ClickHouse to read from, auto falls back to the reference."""
    warehouse = InMemoryWarehouse()

    engine = make_features(Settings(features="auto"), warehouse)

    assert isinstance(engine, ReferenceFeatureEngine)


def test_spark_takes_its_master_and_memory_from_the_settings(
    spark: SparkSession, warehouse: ClickHouseWarehouse
) -> None:
    """PIKCHA_SPARK_MASTER and PIKCHA_SPARK_DRIVER_MEMORY reach the engine."""
    settings = Settings(
        features="spark",
        spark_master="spark://127.0.0.1:7077",
        spark_driver_memory="3g",
    )

    engine = make_features(settings, warehouse)

    assert isinstance(engine, SparkFeatureEngine)
    assert (engine.master, engine.driver_memory) == ("spark://127.0.0.1:7077", "3g")
