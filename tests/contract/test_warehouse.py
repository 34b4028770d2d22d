"""The Warehouse contract, run against every adapter of the port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pikcha.adapters.clickhouse import ClickHouseWarehouse
from pikcha.adapters.memory_warehouse import InMemoryWarehouse
from pikcha.domain.cleaning import Rule
from pikcha.domain.entities import Entity
from pikcha.domain.errors import (
    ConfigurationError,
    InfrastructureError,
    IntegrityError,
    LockedError,
    NotFoundError,
)
from pikcha.domain.quality import TableMetrics
from pikcha.ports.warehouse import MARTS, VIEWS, ProjectedEvent, Warehouse
from tests.contract.warehouse_data import (
    BREAD,
    MILK,
    NOW,
    Line,
    customer,
    product,
    projected,
    purchase,
    rejected,
    shop,
    store,
)

REPO = Path(__file__).resolve().parents[2]
MIGRATIONS = REPO / "infra" / "clickhouse"
SERVER = os.environ.get("PIKCHA_TEST_CLICKHOUSE")
MakeWarehouse = Callable[..., Warehouse]
D = Decimal

EXPECTED: dict[str, list[dict[str, Any]]] = {
    "customer_aggregates": [
        {
            "customer_id": "c1",
            "purchase_count": 2,
            "total_spent": D("480.00"),
            "avg_basket": D("240.00"),
            "first_purchase": datetime(2024, 6, 10, 9, 30),
            "last_purchase": datetime(2024, 6, 29, 18, 0),
            "distinct_stores": 2,
            "cash_count": 1,
            "card_count": 1,
            "delivery_count": 1,
            "is_new_customer": True,
            "is_loyalty_member": True,
            "city": "москва",
        },
        {
            "customer_id": "c2",
            "purchase_count": 2,
            "total_spent": D("130.03"),
            "avg_basket": D("65.01"),
            "first_purchase": datetime(2024, 5, 1, 10, 0),
            "last_purchase": datetime(2024, 5, 1, 23, 59, 59, 999999),
            "distinct_stores": 1,
            "cash_count": 1,
            "card_count": 1,
            "delivery_count": 0,
            "is_new_customer": False,
            "is_loyalty_member": False,
            "city": "казань",
        },
        {
            "customer_id": "c3",
            "purchase_count": 0,
            "total_spent": D("0"),
            "avg_basket": D("0"),
            "first_purchase": None,
            "last_purchase": None,
            "distinct_stores": 0,
            "cash_count": 0,
            "card_count": 0,
            "delivery_count": 0,
            "is_new_customer": False,
            "is_loyalty_member": True,
            "city": "москва",
        },
    ],
    "store_daily": [
        {
            "store_id": "s1",
            "day": date(2024, 5, 1),
            "purchases": 2,
            "revenue": D("130.03"),
        },
        {
            "store_id": "s1",
            "day": date(2024, 6, 29),
            "purchases": 1,
            "revenue": D("180"),
        },
        {
            "store_id": "s2",
            "day": date(2024, 6, 10),
            "purchases": 1,
            "revenue": D("300"),
        },
    ],
    "product_sales": [
        {
            "product_id": "p1",
            "name": "хлеб",
            "category_code": "bakery",
            "units": D("3"),
            "revenue": D("150"),
        },
        {
            "product_id": "p2",
            "name": "молоко",
            "category_code": "dairy",
            "units": D("2"),
            "revenue": D("160.03"),
        },
        {
            "product_id": "p3",
            "name": "сыр",
            "category_code": "dairy",
            "units": D("1.5"),
            "revenue": D("300"),
        },
    ],
    "city_sales": [
        {"city": "казань", "purchases": 1, "revenue": D("300"), "customers": 1},
        {"city": "москва", "purchases": 3, "revenue": D("310.03"), "customers": 2},
    ],
    "v_store_sales": [
        {
            "store_id": "s1",
            "store_name": "пикча центр",
            "city": "москва",
            "purchases": 3,
            "revenue": D("310.03"),
        },
        {
            "store_id": "s2",
            "store_name": "пикча север",
            "city": "казань",
            "purchases": 1,
            "revenue": D("300"),
        },
    ],
    "v_top_products": [
        {"product_id": "p3", "name": "сыр", "units": D("1.5"), "revenue": D("300")},
        {"product_id": "p2", "name": "молоко", "units": D("2"), "revenue": D("160.03")},
        {"product_id": "p1", "name": "хлеб", "units": D("3"), "revenue": D("150")},
    ],
    "v_daily_sales": [
        {"day": date(2024, 5, 1), "purchases": 2, "revenue": D("130.03")},
        {"day": date(2024, 6, 10), "purchases": 1, "revenue": D("300")},
        {"day": date(2024, 6, 29), "purchases": 1, "revenue": D("180")},
    ],
    "v_customer_activity": [
        {"segment": "active", "customers": 1},
        {"segment": "inactive", "customers": 2},
        {"segment": "loyal", "customers": 2},
        {"segment": "new", "customers": 1},
    ],
    "v_city_sales": [
        {"city": "москва", "purchases": 3, "revenue": D("310.03"), "customers": 2},
        {"city": "казань", "purchases": 1, "revenue": D("300"), "customers": 1},
    ],
}


def clean(warehouse: Warehouse, entity: Entity) -> dict[str, Any]:
    return {
        getattr(row, f"{entity.value}_id"): row for row in warehouse.clean_rows(entity)
    }


def fresh(warehouse: Warehouse) -> Warehouse:
    warehouse.reset()
    warehouse.migrate()

    return warehouse


class WarehouseContract:
    @pytest.fixture
    def make(self, tmp_path: Path) -> Iterator[MakeWarehouse]:
        raise NotImplementedError

    @pytest.fixture
    def warehouse(self, make: MakeWarehouse) -> Warehouse:
        warehouse = make()
        warehouse.migrate()

        return warehouse

    @pytest.fixture
    def loaded(self, warehouse: Warehouse) -> Warehouse:
        warehouse.write(shop())
        warehouse.build_marts(NOW)

        return warehouse

    def test_migrate_applies_every_file_once(self, make: MakeWarehouse) -> None:
        """The first migrate applies every file in name order, the second none."""
        warehouse = make()

        names = sorted(path.name for path in MIGRATIONS.glob("*.sql"))
        assert warehouse.migrate() == names
        assert warehouse.migrate() == []

    def test_a_changed_applied_migration_is_refused(
        self, make: MakeWarehouse, tmp_path: Path
    ) -> None:
        """Editing a migration after it was applied raises an IntegrityError."""
        copy = tmp_path / "migrations"
        shutil.copytree(MIGRATIONS, copy)
        warehouse = make(migrations_dir=copy)
        warehouse.migrate()
        with (copy / "0002_marts.sql").open("a", encoding="utf-8") as file:
            file.write("\n-- edited\n")

        with pytest.raises(IntegrityError, match=r"0002_marts\.sql.*new migration"):
            warehouse.migrate()

    def test_writing_before_migrate_fails_clearly(self, make: MakeWarehouse) -> None:
        """Without tables, write raises an InfrastructureError that says to migrate."""
        warehouse = make()

        with pytest.raises(InfrastructureError, match="migrat"):
            warehouse.write(shop())

    def test_write_returns_how_many_events_were_new(self, warehouse: Warehouse) -> None:
        """A batch counts its new events; written again, none are new."""
        events = shop()

        assert warehouse.write(events) == len(events)
        assert warehouse.write(events) == 0
        assert warehouse.write([]) == 0

    def test_a_batch_written_twice_leaves_every_table_unchanged(
        self, warehouse: Warehouse
    ) -> None:
        """Redelivering a whole batch leaves no trace in any table."""
        warehouse.write(shop())
        once = warehouse.dump()

        warehouse.write(shop())

        assert warehouse.dump() == once

    def test_overlapping_batches_store_each_event_once(
        self, warehouse: Warehouse
    ) -> None:
        """A batch that repeats part of an earlier one adds only the rest."""
        events = shop()
        warehouse.write(events)
        whole = warehouse.dump()
        fresh(warehouse)

        assert warehouse.write(events[:8]) == 8
        assert warehouse.write(events[5:]) == len(events) - 8
        assert warehouse.dump() == whole

    def test_repeats_within_a_batch_are_written_once(
        self, warehouse: Warehouse
    ) -> None:
        """An event_id seen twice in one batch is one event."""
        events = shop()

        assert warehouse.write(events + events[:4]) == len(events)
        assert sum(m.rows for m in warehouse.quality()) == len(events)

    def test_the_latest_valid_version_wins_whatever_the_arrival_order(
        self, warehouse: Warehouse
    ) -> None:
        """The clean row is the valid event with the highest offset."""
        warehouse.write([customer("c1", 7, city="казань")])
        warehouse.write([customer("c1", 3, city="москва")])

        assert clean(warehouse, Entity.CUSTOMER)["c1"].city == "казань"

    def test_a_later_rejected_version_keeps_the_earlier_clean_row(
        self, warehouse: Warehouse
    ) -> None:
        """A rejection never replaces the clean row; it is counted by its rule."""
        warehouse.write([product("p1", 1, price="50.00")])
        warehouse.write([rejected(Entity.PRODUCT, "p1", 2)])

        assert clean(warehouse, Entity.PRODUCT)["p1"].price == Decimal("50.00")
        products = warehouse.quality()[1]
        assert (products.table, products.rejected) == (
            "raw_products",
            {"not_negative": 1},
        )

    def test_purchase_items_follow_the_purchase_version(
        self, warehouse: Warehouse
    ) -> None:
        """A newer version with fewer lines hides the older version's extra lines."""
        three = purchase("b1", 1, BREAD, MILK, Line("p3", "1", "10.00"))
        one = purchase("b1", 2, Line("p9", "4", "2.50"))
        warehouse.write([one])
        warehouse.write([three])

        (row,) = warehouse.clean_rows(Entity.PURCHASE)

        assert row == one.outcome
        assert [(i.line_no, i.product_id) for i in row.items] == [(0, "p9")]

    def test_clean_rows_come_in_id_order_as_domain_rows(
        self, warehouse: Warehouse
    ) -> None:
        """Each entity's clean rows are its clean dataclasses, sorted by id."""
        events = shop()
        warehouse.write(events)
        latest = {e.raw.entity_id: e.outcome for e in events if e.raw.offset != 14}

        for entity in Entity:
            rows = list(warehouse.clean_rows(entity))
            ids = [getattr(row, f"{entity.value}_id") for row in rows]
            assert ids == sorted(ids)
            assert rows == [latest[i] for i in ids]

    def test_many_purchases_stream_with_their_items(self, warehouse: Warehouse) -> None:
        """More rows than one read returns still come whole and in order."""
        count = 10_050
        warehouse.write(
            [
                purchase(f"b{n:05d}", n, Line(f"p{n % 7}", "1", "3.00"), BREAD)
                for n in range(count)
            ]
        )

        rows = list(warehouse.clean_rows(Entity.PURCHASE))

        assert [row.purchase_id for row in rows] == [f"b{n:05d}" for n in range(count)]
        assert all(len(row.items) == 2 for row in rows)

    def test_repeated_data_is_counted_in_quality(self, warehouse: Warehouse) -> None:
        """Quality counts rows, distinct (entity_id, content_hash) and rejections."""
        warehouse.write(
            [
                customer("c1", 1),
                customer("c1", 2),
                customer("c1", 3, city="казань"),
                rejected(Entity.CUSTOMER, "c2", 4, Rule.DATE_NOT_FUTURE),
                rejected(Entity.CUSTOMER, "c4", 5, Rule.ID_PRESENT),
                rejected(Entity.CUSTOMER, "c5", 6, Rule.ID_PRESENT),
                customer("c3", 7),
            ]
        )

        metrics = {m.table: m for m in warehouse.quality()}

        assert metrics["raw_customers"] == TableMetrics(
            "raw_customers", 7, 6, {"date_not_future": 1, "id_present": 2}
        )
        assert metrics["raw_stores"] == TableMetrics("raw_stores", 0, 0, {})

    def test_reconciliation_balances_each_entity(self, warehouse: Warehouse) -> None:
        """raw = clean + rejected + repeated + superseded, per entity."""
        warehouse.write(
            [
                *shop(),
                customer("c1", 21, registered=datetime(2024, 6, 20, 9, 0), loyal=True),
                customer("c2", 22, city="самара"),
                customer("c2", 23, city="самара"),
                rejected(Entity.CUSTOMER, "c9", 24),
            ]
        )

        result = warehouse.reconcile()

        assert all(r.balanced for r in result.values())
        customers = result[Entity.CUSTOMER]
        assert (customers.raw, customers.clean, customers.rejected) == (7, 3, 1)
        assert (customers.repeated, customers.superseded) == (2, 1)
        purchases = result[Entity.PURCHASE]
        assert (purchases.raw, purchases.clean, purchases.rejected) == (6, 4, 1)
        assert (purchases.repeated, purchases.superseded) == (0, 1)

    def test_build_marts_returns_the_rows_of_each_mart(
        self, warehouse: Warehouse
    ) -> None:
        """build_marts reports every mart of MARTS with its row count."""
        warehouse.write(shop())

        assert warehouse.build_marts(NOW) == {
            "customer_aggregates": 3,
            "store_daily": 3,
            "product_sales": 3,
            "city_sales": 2,
        }

    @pytest.mark.parametrize("name", sorted(EXPECTED))
    def test_marts_and_views_hold_the_expected_rows(
        self, loaded: Warehouse, name: str
    ) -> None:
        """Every adapter computes the same rows for the small hand-built shop."""
        assert loaded.query(name) == EXPECTED[name]

    def test_rebuilding_the_marts_replaces_their_rows(self, loaded: Warehouse) -> None:
        """A rebuild after new events reflects them, with nothing kept twice."""
        loaded.write([purchase("b5", 5, BREAD, customer_id="c3", store_id="s2")])

        counts = loaded.build_marts(NOW)

        assert counts["store_daily"] == 4
        sales = {row["store_id"]: row for row in loaded.query("v_store_sales")}
        assert sales["s2"]["purchases"] == 2
        assert sales["s2"]["revenue"] == Decimal("400.00")

    def test_duplicate_share_shows_the_latest_load(self, warehouse: Warehouse) -> None:
        """v_duplicate_share reads the load checked last, recorded once."""
        old = [TableMetrics("raw_stores", 10, 2)]
        new = [TableMetrics("raw_stores", 4, 3), TableMetrics("raw_products", 2, 2)]
        warehouse.record_quality("load-b", NOW, old)
        warehouse.record_quality("load-a", NOW + timedelta(hours=1), new)
        warehouse.record_quality("load-a", NOW + timedelta(hours=1), new)

        assert warehouse.query("v_duplicate_share") == [
            {
                "table_name": "raw_products",
                "duplicate_share": 0.0,
                "rows": 2,
                "duplicates": 0,
            },
            {
                "table_name": "raw_stores",
                "duplicate_share": 0.25,
                "rows": 4,
                "duplicates": 1,
            },
        ]

    def test_an_unknown_query_name_lists_the_known_ones(
        self, warehouse: Warehouse
    ) -> None:
        """query of a name outside MARTS and VIEWS raises NotFoundError naming them."""
        with pytest.raises(NotFoundError, match=r"v_sales.*v_store_sales") as caught:
            warehouse.query("v_sales")

        assert all(name in str(caught.value) for name in (*MARTS, *VIEWS))

    def test_naive_datetimes_round_trip_whatever_the_local_zone(
        self, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Wall-clock times read back unchanged, even in a DST gap of the local zone."""
        monkeypatch.setenv("TZ", "America/New_York")
        time.tzset()
        try:
            gap = datetime(2024, 3, 10, 2, 30, 15, 123456)
            events = [
                purchase("b1", 1, BREAD, when=gap),
                customer("c1", 1, registered=datetime(1969, 12, 31, 23, 59, 59, 1)),
            ]
            warehouse.write(events)

            (bought,) = warehouse.clean_rows(Entity.PURCHASE)
            (person,) = warehouse.clean_rows(Entity.CUSTOMER)
        finally:
            monkeypatch.undo()
            time.tzset()

        assert bought.purchase_datetime == gap
        assert person == events[1].outcome

    def test_aware_datetimes_are_kept_as_their_utc_instant(
        self, warehouse: Warehouse
    ) -> None:
        """An occurred_at with an offset is stored as the same instant in UTC."""
        moscow = timezone(timedelta(hours=3))
        event = projected(
            Entity.STORE,
            "s1",
            1,
            store("s1", 1).outcome,
            occurred_at=datetime(2024, 6, 1, 3, 0, tzinfo=moscow),
        )
        warehouse.write([event])

        (row,) = warehouse.dump()["raw_stores"]

        assert row[4] == datetime(2024, 6, 1, 0, 0)

    def test_reset_then_migrate_gives_an_empty_warehouse(
        self, loaded: Warehouse
    ) -> None:
        """reset drops every table; migrate builds them empty again."""
        loaded.reset()
        assert loaded.dump() == {}

        loaded.migrate()

        tables = loaded.dump()
        migrations = tables.pop("pikcha_migrations")
        assert all(rows == [] for rows in tables.values())
        assert len(migrations) == len(list(MIGRATIONS.glob("*.sql")))
        assert {"raw_purchases", "clean_purchase_items", "data_quality"} <= set(tables)

    def test_an_outcome_of_another_entity_is_refused(
        self, warehouse: Warehouse
    ) -> None:
        """A store event carrying a product row raises an IntegrityError."""
        wrong = ProjectedEvent(store("s1", 1).raw, product("p1", 1).outcome)

        with pytest.raises(IntegrityError, match="store-s1-1"):
            warehouse.write([wrong])

    @settings(
        max_examples=10,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(data=st.data())
    def test_any_batching_and_redelivery_gives_the_same_tables(
        self, warehouse: Warehouse, data: st.DataObject
    ) -> None:
        """Split, reordered and redelivered batches leave the tables of one write."""
        events = [*shop(), customer("c1", 30, registered=datetime(2024, 6, 20, 9, 0))]
        fresh(warehouse).write(events)
        reference = warehouse.dump()

        order = data.draw(st.permutations(events))
        again = data.draw(st.lists(st.sampled_from(events), max_size=6))
        cuts = sorted(data.draw(st.lists(st.integers(0, len(events)), max_size=4)))
        stream = [*order, *again]
        bounds = [0, *cuts, len(stream)]
        fresh(warehouse)

        written = sum(warehouse.write(stream[a:b]) for a, b in pairwise(bounds))

        assert written == len(events)
        assert warehouse.dump() == reference


class TestInMemoryWarehouse(WarehouseContract):
    @pytest.fixture
    def make(self, tmp_path: Path) -> Iterator[MakeWarehouse]:
        def build(migrations_dir: Path | None = None) -> Warehouse:
            return InMemoryWarehouse(migrations_dir)

        yield build


class TestChdbWarehouse(WarehouseContract):
    @pytest.fixture
    def make(self, tmp_path: Path) -> Iterator[MakeWarehouse]:
        opened: list[ClickHouseWarehouse] = []

        def build(migrations_dir: Path | None = None) -> Warehouse:
            for warehouse in opened:
                warehouse.close()
            opened.append(ClickHouseWarehouse(f"chdb://{tmp_path}/wh", migrations_dir))
            return opened[-1]

        yield build
        for warehouse in opened:
            warehouse.close()

    def test_a_second_process_on_the_same_path_is_refused(self, tmp_path: Path) -> None:
        """While one process owns a chDB path, another's first call gets a
        transient LockedError naming it."""
        path = tmp_path / "wh"
        warehouse = ClickHouseWarehouse(f"chdb://{path}")
        warehouse.migrate()
        script = textwrap.dedent(
            f"""
            from pikcha.adapters.clickhouse import ClickHouseWarehouse
            from pikcha.domain.errors import LockedError
            try:
                ClickHouseWarehouse("chdb://{path}").migrate()
            except LockedError as exc:
                print(exc.transient, exc)
            """
        )
        try:
            out = subprocess.run(
                [sys.executable, "-c", script],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout.strip()
        finally:
            warehouse.close()

        assert out == (
            f"True the warehouse at {path} is in use by another process "
            f"(pid {os.getpid()}); stop it or set PIKCHA_WAREHOUSE to another path"
        )

    def test_closing_releases_the_path(self, tmp_path: Path) -> None:
        """After close, the same path opens again; while open, it does not."""
        url = f"chdb://{tmp_path}/wh"
        first = ClickHouseWarehouse(url)
        first.migrate()
        with pytest.raises(LockedError, match="already open in this process") as held:
            ClickHouseWarehouse(url).migrate()
        first.close()

        second = ClickHouseWarehouse(url)
        second.migrate()
        second.close()
        assert not held.value.transient

    def test_constructing_opens_nothing(self, tmp_path: Path) -> None:
        """The path is neither created nor locked until the first call."""
        path = tmp_path / "wh"
        idle = ClickHouseWarehouse(f"chdb://{path}")

        assert not path.exists()
        idle.close()

    def test_a_closed_warehouse_refuses_work(self, tmp_path: Path) -> None:
        """Calls after close raise an InfrastructureError, not a driver error."""
        warehouse = ClickHouseWarehouse(f"chdb://{tmp_path}/wh")
        warehouse.close()

        with pytest.raises(InfrastructureError, match="closed"):
            warehouse.migrate()

    @pytest.mark.parametrize(
        "url",
        ["mysql://admin:s3cret@db:3306/shop", "chdb://relative/path"],
    )
    def test_a_bad_url_names_the_setting_and_hides_the_password(self, url: str) -> None:
        """A URL the adapter cannot use raises a ConfigurationError without secrets."""
        with pytest.raises(ConfigurationError, match="PIKCHA_WAREHOUSE") as caught:
            ClickHouseWarehouse(url)

        assert "s3cret" not in str(caught.value)

    def test_an_unreachable_server_is_a_transient_error(self) -> None:
        """A refused connection is an InfrastructureError worth retrying."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]

        warehouse = ClickHouseWarehouse(f"http://admin:s3cret@127.0.0.1:{port}/shop")
        with pytest.raises(InfrastructureError, match="could not connect") as caught:
            warehouse.migrate()

        assert caught.value.transient
        assert "admin:***@" in str(caught.value)
        assert "s3cret" not in str(caught.value)

    def test_semicolons_in_comments_and_strings_do_not_split_statements(
        self, make: MakeWarehouse, tmp_path: Path
    ) -> None:
        """A migration splits on ; only between statements; reset drops its tables."""
        copy = tmp_path / "migrations"
        shutil.copytree(MIGRATIONS, copy)
        (copy / "0099_extra.sql").write_text(
            "-- a note; with a semicolon\n"
            "CREATE TABLE IF NOT EXISTS extra (s String DEFAULT 'a;b', "
            "`odd;name` UInt8) /* c; d */ ENGINE = MergeTree ORDER BY s;\n"
            "INSERT INTO extra (`odd;name`) VALUES (1);\n",
            encoding="utf-8",
        )
        warehouse = make(migrations_dir=copy)

        assert warehouse.migrate()[-1] == "0099_extra.sql"
        assert warehouse.dump()["extra"] == [("a;b", 1)]
        warehouse.reset()
        assert warehouse.dump() == {}

    def test_the_memory_adapter_dumps_the_same_tables(self, loaded: Warehouse) -> None:
        """Fed the same events, the in-memory warehouse holds row for row the same."""
        memory = InMemoryWarehouse()
        memory.migrate()
        memory.write(shop())
        memory.build_marts(NOW)
        for target in (loaded, memory):
            target.record_quality("load-1", NOW, loaded.quality())

        assert memory.dump() == loaded.dump()


@pytest.mark.skipif(
    not SERVER, reason="PIKCHA_TEST_CLICKHOUSE does not name a ClickHouse server"
)
class TestServerWarehouse(WarehouseContract):
    @pytest.fixture
    def make(self, tmp_path: Path) -> Iterator[MakeWarehouse]:
        opened: list[ClickHouseWarehouse] = []

        def build(migrations_dir: Path | None = None) -> Warehouse:
            warehouse = ClickHouseWarehouse(SERVER or "", migrations_dir)
            opened.append(warehouse)
            warehouse.reset()
            return warehouse

        yield build
        for warehouse in opened:
            warehouse.reset()
            warehouse.close()
