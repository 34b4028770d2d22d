"""The FeatureEngine contract: every engine equals the reference, row for row."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from pikcha.adapters.clickhouse.features import ClickHouseFeatureEngine
from pikcha.adapters.clickhouse.warehouse import ClickHouseWarehouse
from pikcha.adapters.memory_warehouse import InMemoryWarehouse
from pikcha.adapters.reference_features import ReferenceFeatureEngine
from pikcha.application.generate import GeneratorConfig, write_jsonl
from pikcha.application.pipeline import Pipeline
from pikcha.domain.entities import Entity
from pikcha.domain.features import FEATURE_NAMES, compute_features
from pikcha.ports.features import FeatureEngine
from pikcha.ports.warehouse import Warehouse
from pikcha.testing import fixed_clock, memory_pipeline

NOW = datetime(2025, 9, 30, 12, 0)
AS_OF = datetime(2025, 9, 30, 23, 59, 59, 999999)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("source")
    write_jsonl(
        GeneratorConfig(seed=21, now=NOW, purchases=4000, customers=300, repeated=0.1),
        folder,
    )

    return folder


def fill(warehouse: Warehouse, source: Path) -> Pipeline:
    pipeline = memory_pipeline(warehouse=warehouse, clock=fixed_clock(NOW))
    pipeline.load(source)
    pipeline.publish()
    pipeline.project()

    return pipeline


class FeatureEngineContract:
    """Run by every engine over the same generated shop."""

    @pytest.fixture
    def engine(self, tmp_path: Path, source: Path) -> Iterator[FeatureEngine]:
        raise NotImplementedError

    def test_rows_equal_the_reference_on_every_column(
        self, engine: FeatureEngine, expected: list[tuple[str, tuple[int, ...]]]
    ) -> None:
        """One row per eligible customer, in id order, every value equal."""
        rows = [(row.customer_id, row.values) for row in engine.compute(AS_OF)]

        assert rows == expected

    def test_every_row_has_thirty_zero_or_one_values(
        self, engine: FeatureEngine
    ) -> None:
        """Values are 0 or 1, as many as the catalogue has features."""
        rows = engine.compute(AS_OF)

        assert rows
        assert all(len(row.values) == len(FEATURE_NAMES) for row in rows)
        assert {value for row in rows for value in row.values} == {0, 1}

    def test_an_as_of_before_every_registration_gives_no_rows(
        self, engine: FeatureEngine
    ) -> None:
        """Customers registered after as_of are not in the table."""
        assert engine.compute(datetime(2000, 1, 1)) == []


@pytest.fixture(scope="module")
def expected(source: Path) -> list[tuple[str, tuple[int, ...]]]:
    warehouse = InMemoryWarehouse()
    fill(warehouse, source)
    rows = compute_features(
        warehouse.clean_rows(Entity.CUSTOMER),
        warehouse.clean_rows(Entity.PURCHASE),
        warehouse.clean_rows(Entity.PRODUCT),
        AS_OF,
    )

    return [(row.customer_id, row.values) for row in rows]


class TestReferenceOnMemory(FeatureEngineContract):
    @pytest.fixture
    def engine(self, tmp_path: Path, source: Path) -> Iterator[FeatureEngine]:
        warehouse = InMemoryWarehouse()
        fill(warehouse, source)
        yield ReferenceFeatureEngine(warehouse)


class TestReferenceOnChdb(FeatureEngineContract):
    @pytest.fixture
    def engine(self, tmp_path: Path, source: Path) -> Iterator[FeatureEngine]:
        warehouse = ClickHouseWarehouse(f"chdb://{tmp_path / 'wh'}")
        try:
            fill(warehouse, source)
            yield ReferenceFeatureEngine(warehouse)
        finally:
            warehouse.close()


class TestClickHouseSql(FeatureEngineContract):
    @pytest.fixture
    def engine(self, tmp_path: Path, source: Path) -> Iterator[FeatureEngine]:
        warehouse = ClickHouseWarehouse(f"chdb://{tmp_path / 'wh'}")
        try:
            fill(warehouse, source)
            yield ClickHouseFeatureEngine(warehouse.client)
        finally:
            warehouse.close()
