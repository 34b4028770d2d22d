"""Faults the pipeline must survive or report clearly: a warehouse that another
process holds or whose server is down, and an object store that cannot take a
file (an unwritable folder, a file size limit standing in for a full disk)."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import pytest
from click.testing import CliRunner
from structlog.testing import capture_logs

from pikcha.adapters.clickhouse import ClickHouseWarehouse
from pikcha.adapters.local_objects import LocalObjectStore
from pikcha.adapters.memory import InMemoryEventLog
from pikcha.adapters.memory_warehouse import InMemoryWarehouse
from pikcha.adapters.sqlite_event_log import SqliteEventLog
from pikcha.application.generate import GeneratorConfig, iter_records
from pikcha.application.project import Projector, ProjectorConfig
from pikcha.application.publish import EnvelopeFactory, publish_records
from pikcha.domain.entities import Entity
from pikcha.domain.errors import InfrastructureError, LockedError
from pikcha.domain.events import stream_of
from pikcha.domain.masking import Masker
from pikcha.entrypoints.cli import main
from pikcha.ports.event_log import EventLog
from pikcha.ports.warehouse import ProjectedEvent
from pikcha.testing import fixed_clock, memory_pipeline, sequential_ids

NOW = datetime(2025, 9, 30, 12, 0)
STREAMS = [stream_of(entity) for entity in Entity]
HOLD_LIMIT = 60.0
PIKCHA = [sys.executable, "-m", "pikcha.entrypoints.cli"]


def publish(log: EventLog, purchases: int = 40) -> int:
    """Generated shop data appended to ``log``; returns the number of events."""
    config = GeneratorConfig(
        now=NOW, seed=3, stores=4, products=6, customers=10, purchases=purchases
    )
    factory = EnvelopeFactory(
        Masker(b"fault-test-key-not-secret-000", "test"),
        sequential_ids(),
        fixed_clock(NOW),
    )

    return publish_records(iter_records(config), log, factory).total


def committed(log: EventLog) -> int:
    return sum(sum(log.committed("warehouse", s).values()) for s in STREAMS)


def environment(**values: str) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith("PIKCHA_")}

    return {**kept, **values}


def lines_of(stream: IO[str]) -> queue.Queue[str]:
    """The lines of a pipe, read on a thread, so a test can wait with a limit."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()

    return lines


def first_line_with(lines: queue.Queue[str], needle: str, seen: list[str]) -> str:
    while True:
        line = lines.get(timeout=HOLD_LIMIT)
        seen.append(line)
        if not line or needle in line:
            return line


class HeldWarehouse(InMemoryWarehouse):
    """An in-memory warehouse that another process holds for ``refusals`` writes;
    it notes how much the group had committed at each refusal."""

    def __init__(self, log: EventLog, refusals: int, transient: bool = True) -> None:
        super().__init__()
        self.log = log
        self.refusals = refusals
        self.transient = transient
        self.committed_while_held: list[int] = []

    def write(self, events: Sequence[ProjectedEvent]) -> int:
        if self.refusals:
            self.refusals -= 1
            self.committed_while_held.append(committed(self.log))
            raise LockedError("the warehouse is held", transient=self.transient)

        return super().write(events)


@pytest.fixture
def held_log() -> InMemoryEventLog:
    log = InMemoryEventLog()
    publish(log)

    return log


def projector(
    log: EventLog, warehouse: InMemoryWarehouse, max_wait: float = 60.0
) -> Projector:
    warehouse.migrate()

    return Projector(
        log,
        warehouse,
        fixed_clock(NOW),
        ProjectorConfig(poll_timeout=0, max_wait=max_wait),
        sleep=lambda seconds: None,
    )


def test_a_held_warehouse_is_waited_for_with_growing_pauses(
    held_log: InMemoryEventLog,
) -> None:
    """Each refusal is logged with its attempt and a doubled wait, then all lands."""
    warehouse = HeldWarehouse(held_log, refusals=4)

    with capture_logs() as logs:
        report = projector(held_log, warehouse).run()

    retries = [e for e in logs if e["event"] == "transient_failure"]
    assert [(e["attempt"], e["wait"]) for e in retries] == [
        (1, 0.2),
        (2, 0.4),
        (3, 0.8),
        (4, 1.6),
    ]
    assert all("held" in e["error"] for e in retries)
    assert report.new == report.read == sum(map(len, warehouse.raw.values()))


def test_no_position_is_committed_while_the_warehouse_is_held(
    held_log: InMemoryEventLog,
) -> None:
    """The group's position stays where it was until the batch is written."""
    warehouse = HeldWarehouse(held_log, refusals=3)

    projector(held_log, warehouse).run()

    assert warehouse.committed_while_held == [0, 0, 0]
    assert committed(held_log) == sum(map(len, warehouse.raw.values()))


def test_patience_runs_out_with_the_transient_error(
    held_log: InMemoryEventLog,
) -> None:
    """After waits that add up to max_wait the error is raised; nothing committed."""
    warehouse = HeldWarehouse(held_log, refusals=100)
    waits: list[float] = []
    run = projector(held_log, warehouse, max_wait=1.0)
    run.sleep = waits.append

    with pytest.raises(LockedError, match="held") as caught:
        run.run()

    assert caught.value.transient
    assert waits == pytest.approx([0.2, 0.4, 0.4])
    assert committed(held_log) == 0


def test_a_lock_of_this_same_process_is_not_waited_for(
    held_log: InMemoryEventLog,
) -> None:
    """Waiting cannot free a lock the process itself holds: it fails at once."""
    warehouse = HeldWarehouse(held_log, refusals=1, transient=False)
    waits: list[float] = []
    run = projector(held_log, warehouse)
    run.sleep = waits.append

    with pytest.raises(LockedError):
        run.run()

    assert waits == []


def test_a_server_that_is_down_is_retried_before_the_error_surfaces() -> None:
    """Preparing the projection retries a refused connection, then names it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    warehouse = ClickHouseWarehouse(f"http://pikcha:s3cret@127.0.0.1:{port}/shop")
    pipeline = memory_pipeline(
        warehouse=warehouse, projector=ProjectorConfig(backoff=0.01, max_wait=0.05)
    )

    with capture_logs() as logs, pytest.raises(InfrastructureError) as caught:
        pipeline.make_projector()

    assert caught.value.transient
    assert "could not connect" in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert len([e for e in logs if e["event"] == "transient_failure"]) >= 3


HOLDER = """
import sys
from pikcha.adapters.clickhouse import ClickHouseWarehouse

warehouse = ClickHouseWarehouse(sys.argv[1])
warehouse.migrate()
print("holding", flush=True)
sys.stdin.read()
warehouse.close()
"""


@dataclass
class Outcome:
    """What ``pikcha stream`` did while another process held its warehouse."""

    first_retry: dict[str, Any]
    committed_while_held: int
    returncode: int
    stdout: str
    stderr: str


def run_while_held(home: Path, cwd: Path, command: str = "stream") -> Outcome:
    """Start ``pikcha <command>`` while a helper process holds the chDB path;
    let the helper go once the command has logged that it waits."""
    options: dict[str, Any] = {
        "cwd": cwd,
        "env": environment(PIKCHA_HOME=str(home), PIKCHA_FEATURES="clickhouse"),
        "text": True,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
    }
    url = f"chdb://{home / 'warehouse'}"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url], stdin=subprocess.PIPE, **options
    )
    stream: subprocess.Popen[str] | None = None
    seen: list[str] = []
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        stream = subprocess.Popen([*PIKCHA, command], **options)
        assert stream.stderr is not None
        lines = lines_of(stream.stderr)
        retry = first_line_with(lines, "transient_failure", seen)
        assert retry, "".join(seen)
        log = SqliteEventLog(home / "events.db")
        try:
            waiting = committed(log)
        finally:
            log.close()
        holder.communicate(timeout=60)
        out, _ = stream.communicate(timeout=120)
        while line := lines.get(timeout=10):
            seen.append(line)
    finally:
        for process in (holder, stream):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()

    return Outcome(json.loads(retry), waiting, stream.returncode, out, "".join(seen))


def test_stream_waits_for_a_held_warehouse_then_projects_each_event_once(
    tmp_path: Path,
) -> None:
    """``pikcha stream`` started while another process holds the chDB path waits,
    commits nothing meanwhile, and once the path is free projects every event once."""
    home = tmp_path / "var"
    log = SqliteEventLog(home / "events.db")
    try:
        published = publish(log, purchases=150)
    finally:
        log.close()

    outcome = run_while_held(home, tmp_path)

    assert outcome.returncode == 0, outcome.stderr
    assert "in use by another process" in outcome.first_retry["error"]
    assert outcome.committed_while_held == 0
    assert f"projected {published} events ({published} new)" in outcome.stdout
    warehouse = ClickHouseWarehouse(f"chdb://{home / 'warehouse'}")
    log = SqliteEventLog(home / "events.db")
    try:
        for entity in Entity:
            rows = warehouse.client.query(
                f"SELECT count(), uniqExact(event_id) FROM raw_{entity.value}s"
            ).result_rows[0]
            ends = sum(log.end_offsets(stream_of(entity)).values())
            assert tuple(rows) == (ends, ends), entity
    finally:
        warehouse.close()
        log.close()


def test_replay_waits_for_a_held_warehouse_before_dropping_anything(
    tmp_path: Path,
) -> None:
    """``pikcha replay`` started while another process holds the chDB path waits
    instead of failing, then rebuilds the warehouse with every event once."""
    home = tmp_path / "var"
    log = SqliteEventLog(home / "events.db")
    try:
        published = publish(log, purchases=60)
    finally:
        log.close()

    outcome = run_while_held(home, tmp_path, "replay")

    assert outcome.returncode == 0, outcome.stderr
    assert "in use by another process" in outcome.first_retry["error"]
    assert f"replayed {published} events (0 dead-lettered)" in outcome.stdout
    warehouse = ClickHouseWarehouse(f"chdb://{home / 'warehouse'}")
    try:
        raw = sum(part.raw for part in warehouse.reconcile().values())
    finally:
        warehouse.close()
    assert raw == published


FILLER = """
import json, resource, signal, sys
from pikcha.adapters.local_objects import LocalObjectStore
from pikcha.domain.errors import PikchaError

store = LocalObjectStore(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    store.put("features/a.csv", b"n" * 100_000, "text/csv")
except PikchaError as exc:
    print(json.dumps({"type": type(exc).__name__, "message": str(exc)}))
"""


def test_a_file_too_large_fails_clearly_and_keeps_the_earlier_version(
    tmp_path: Path,
) -> None:
    """A write past the file size limit (as a full disk) raises a clear error,
    leaves no temporary file nor partial object, and keeps the earlier version."""
    root = tmp_path / "objects"
    store = LocalObjectStore(root)
    earlier = store.put("features/a.csv", b"id\n1\n", "text/csv")

    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(FILLER), str(root)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    error = json.loads(result.stdout)
    assert error["type"] == "InfrastructureError"
    assert "'features/a.csv'" in error["message"]
    assert str(root) in error["message"]
    assert "File too large" in error["message"]
    assert "PIKCHA_OBJECTS" in error["message"]
    assert store.get("features/a.csv") == b"id\n1\n"
    assert store.stat("features/a.csv") == earlier
    assert list((root / ".pikcha" / "tmp").iterdir()) == []
    assert [info.key for info in store.list()] == ["features/a.csv"]


def unwritable_root(tmp_path: Path) -> Path:
    """A folder below a regular file: no one, root included, can create it."""
    (tmp_path / "file").write_text("not a folder")

    return tmp_path / "file" / "objects"


def test_exporting_features_into_an_unwritable_store_raises_the_clear_error(
    tmp_path: Path,
) -> None:
    """Pipeline.export_features names the object, the folder and PIKCHA_OBJECTS."""
    root = unwritable_root(tmp_path)
    pipeline = memory_pipeline(objects=LocalObjectStore(root))
    pipeline.warehouse.migrate()

    with pytest.raises(InfrastructureError, match="PIKCHA_OBJECTS") as caught:
        pipeline.export_features(NOW)

    assert "features/analytic_result_2025_09_30.csv" in str(caught.value)
    assert str(root) in str(caught.value)


def test_the_features_command_into_an_unwritable_store_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pikcha features`` that cannot write its export says so in one line."""
    for name in [name for name in os.environ if name.startswith("PIKCHA_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    warehouse = tmp_path / "warehouse"
    migrated = ClickHouseWarehouse(f"chdb://{warehouse}")
    migrated.migrate()
    migrated.close()
    root = unwritable_root(tmp_path)

    result = CliRunner().invoke(
        main,
        ["features", "--as-of", "2025-09-30"],
        env={
            "PIKCHA_HOME": str(tmp_path / "var"),
            "PIKCHA_WAREHOUSE": f"chdb:///{warehouse}",
            "PIKCHA_OBJECTS": f"file:///{root}",
            "PIKCHA_FEATURES": "clickhouse",
            "PIKCHA_MASK_KEY": "fault-test-key-not-secret-000",
        },
    )

    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("pikcha: error: cannot write object 'features/")
    assert "PIKCHA_OBJECTS" in line
