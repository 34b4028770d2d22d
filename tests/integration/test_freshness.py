"""Freshness in the ClickHouse warehouse: when each raw and clean row was written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from pikcha.adapters.clickhouse.warehouse import ClickHouseWarehouse
from pikcha.adapters.memory import InMemoryEventLog
from pikcha.application.generate import GeneratorConfig, iter_records
from pikcha.application.project import Projector, ProjectorConfig
from pikcha.application.publish import EnvelopeFactory, publish_records
from pikcha.domain.masking import Masker
from pikcha.testing import fixed_clock, sequential_ids

NOW = datetime(2025, 9, 30, 12, 0)
PUBLISHED_AT = datetime(2025, 9, 30, 12, 0, tzinfo=UTC)


def projected(folder: Path) -> ClickHouseWarehouse:
    log = InMemoryEventLog()
    factory = EnvelopeFactory(
        Masker(b"freshness-key-0123456789", "test"),
        sequential_ids("e"),
        fixed_clock(PUBLISHED_AT),
    )
    records = iter_records(GeneratorConfig(seed=5, now=NOW, purchases=30))
    publish_records(records, log, factory)
    warehouse = ClickHouseWarehouse(f"chdb://{folder}")
    warehouse.migrate()
    Projector(log, warehouse, lambda: NOW, ProjectorConfig(poll_timeout=0)).run()

    return warehouse


def test_every_raw_and_clean_row_carries_the_moment_it_was_written(
    tmp_path: Path,
) -> None:
    """projected_at is filled by the server at insert, between before and after."""
    before = datetime.now(UTC) - timedelta(seconds=1)
    warehouse = projected(tmp_path / "warehouse")
    after = datetime.now(UTC) + timedelta(seconds=1)
    try:
        for layer in ("raw", "clean"):
            for entity in ("stores", "products", "customers", "purchases"):
                count, empty, first, last = warehouse.client.query(
                    "SELECT count(), countIf(projected_at = 0), "
                    f"min(projected_at), max(projected_at) FROM {layer}_{entity}"
                ).result_rows[0]
                assert count > 0 and empty == 0, (layer, entity)
                # The driver gives UTC times without their zone.
                first, last = (moment.replace(tzinfo=UTC) for moment in (first, last))
                assert before <= first <= last <= after, (layer, entity)
    finally:
        warehouse.close()


def test_freshness_is_the_gap_from_event_time_to_the_clean_row(
    tmp_path: Path,
) -> None:
    """Joining clean rows to their raw events gives each event's freshness."""
    warehouse = projected(tmp_path / "warehouse")
    try:
        rows, lag = warehouse.client.query(
            "SELECT count(), min(dateDiff('second', r.occurred_at, c.projected_at)) "
            "FROM clean_purchases AS c FINAL "
            "INNER JOIN raw_purchases AS r FINAL ON r.event_id = c.event_id"
        ).result_rows[0]
    finally:
        warehouse.close()

    assert rows == 30
    # The events claim to be from 2025; they were written just now.
    assert lag >= (datetime.now(UTC) - PUBLISHED_AT).total_seconds() - 60


def test_write_times_stay_out_of_the_dump(tmp_path: Path) -> None:
    """Dumps compare histories, so the times the server fills in are left out."""
    warehouse = projected(tmp_path / "warehouse")
    try:
        dumped = warehouse.dump()
        (width,) = warehouse.client.query(
            "SELECT count() FROM system.columns "
            "WHERE database = currentDatabase() AND table = 'clean_purchases'"
        ).result_rows[0]
        (tables,) = warehouse.client.query(
            "SELECT count() FROM system.columns "
            "WHERE database = currentDatabase() AND name = 'projected_at'"
        ).result_rows[0]
    finally:
        warehouse.close()

    assert tables == 8
    assert dumped["clean_purchases"]
    assert {len(row) for row in dumped["clean_purchases"]} == {width - 1}
