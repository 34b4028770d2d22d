"""The whole pipeline on the embedded adapters: SQLite, chDB, a local folder."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from pikcha.adapters.clickhouse.warehouse import ClickHouseWarehouse
from pikcha.adapters.sqlite_event_log import SqliteEventLog
from pikcha.application.generate import GeneratorConfig, write_jsonl
from pikcha.domain.entities import Entity
from pikcha.domain.events import stream_of
from pikcha.entrypoints.container import build_pipeline, close_pipeline
from pikcha.entrypoints.settings import Settings

# The projector judges dates by the wall clock, so the data is generated
# relative to it.
NOW = datetime.now().replace(microsecond=0)
ANOMALIES = {
    "repeated": 0.1,
    "nulls": 0.03,
    "empty_strings": 0.03,
    "future_dates": 0.03,
    "negative_prices": 0.03,
    "broken_totals": 0.03,
}


def settings_for(home: Path, **extra: object) -> Settings:
    return Settings(home=home, **extra)  # type: ignore[arg-type]


def generate(folder: Path, purchases: int, seed: int = 3) -> None:
    write_jsonl(
        GeneratorConfig(seed=seed, now=NOW, purchases=purchases, **ANOMALIES), folder
    )


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("source")
    generate(folder, 3000)

    return folder


def test_every_entity_reconciles_with_every_kind_of_anomaly(
    tmp_path: Path, dirty: Path
) -> None:
    """raw = clean + rejected + repeated + superseded, per entity."""
    pipeline = build_pipeline(settings_for(tmp_path / "var"))
    try:
        pipeline.load(dirty)
        pipeline.publish()
        pipeline.project()
        pipeline.publish(resend=True)
        pipeline.project()
        reconciliation = pipeline.warehouse.reconcile()
        quality = {m.table: m for m in pipeline.warehouse.quality()}
    finally:
        close_pipeline(pipeline)

    for entity in Entity:
        result = reconciliation[entity]
        assert result.balanced, result
        assert result.repeated > 0
    assert reconciliation[Entity.PURCHASE].rejected > 0
    rules = set(quality["raw_purchases"].rejected)
    assert {"not_negative", "total_matches_lines", "date_not_future"} <= rules


def test_replay_rebuilds_the_same_warehouse(tmp_path: Path, dirty: Path) -> None:
    """Dropping the warehouse and replaying the log gives the same rows."""
    pipeline = build_pipeline(settings_for(tmp_path / "var"))
    try:
        pipeline.load(dirty)
        pipeline.publish()
        pipeline.project()
        pipeline.build_marts()
        before = pipeline.warehouse.dump()
        pipeline.replay()
        after = pipeline.warehouse.dump()
    finally:
        close_pipeline(pipeline)

    assert before.keys() == after.keys()
    for table in before:
        assert before[table] == after[table], table


def _stream(home: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIKCHA_")}
    env.update(PIKCHA_HOME=str(home), PIKCHA_BATCH_SIZE="700")

    return subprocess.Popen(
        [sys.executable, "-m", "pikcha.entrypoints.cli", "stream"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_projector_killed_at_random_moments_loses_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    """SIGKILL mid-stream, several times, then resume: each event once."""
    home = tmp_path / "var"
    source = tmp_path / "source"
    generate(source, 20_000, seed=11)
    pipeline = build_pipeline(settings_for(home))
    try:
        pipeline.load(source)
        published = pipeline.publish().total
        pipeline.warehouse.migrate()
    finally:
        close_pipeline(pipeline)

    chance = random.Random(5)
    kills = 0
    for _ in range(4):
        process = _stream(home)
        time.sleep(chance.uniform(1.5, 4.0))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
    final = _stream(home)
    assert final.wait(timeout=600) == 0
    assert kills >= 1

    warehouse = ClickHouseWarehouse(f"chdb://{(home / 'warehouse').resolve()}")
    log = SqliteEventLog((home / "events.db").resolve())
    try:
        client = warehouse.client
        total = 0
        for entity in Entity:
            table = f"raw_{entity.value}s"
            rows = client.query(f"SELECT count(), uniqExact(event_id) FROM {table}")
            count, distinct = rows.result_rows[0]
            assert count == distinct, table
            ends = log.end_offsets(stream_of(entity))
            assert count == sum(ends.values()), table
            total += count
        assert total == published
        assert all(r.balanced for r in warehouse.reconcile().values())
    finally:
        warehouse.close()
        log.close()
