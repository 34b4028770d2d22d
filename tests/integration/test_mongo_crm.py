"""The CRM on MongoDB in the pipeline: loads, publishes, failures and the CLI."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from pikcha.adapters.memory import InMemoryEventLog
from pikcha.adapters.mongo_crm import MongoCrmStore
from pikcha.application.generate import GeneratorConfig, write_files
from pikcha.application.load import load_directory
from pikcha.application.pipeline import Pipeline
from pikcha.domain.entities import Entity
from pikcha.domain.errors import ConfigurationError, InfrastructureError
from pikcha.domain.events import decode_envelope, stream_of
from pikcha.entrypoints.container import make_crm
from pikcha.entrypoints.settings import Settings
from pikcha.testing import fixed_clock, memory_pipeline
from tests.services.ports import free_port

NOW = datetime(2025, 9, 30, 12, 0)
SMALL = GeneratorConfig(
    seed=5, now=NOW, stores=4, products=6, customers=12, purchases=20
)
RECORDS = 4 + 6 + 12 + 20


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "source"
    write_files(SMALL, folder)

    return folder


@pytest.fixture
def crm(mongodb_crm_url: str) -> Iterator[MongoCrmStore]:
    store = MongoCrmStore(mongodb_crm_url)
    yield store
    store.close()


def snapshot(crm: MongoCrmStore) -> dict[Entity, list[object]]:
    return {entity: list(crm.scan(entity)) for entity in Entity}


def pipeline_on(crm: MongoCrmStore) -> Pipeline:
    return memory_pipeline(crm=crm, clock=fixed_clock(NOW))


def events(pipeline: Pipeline, entity: Entity) -> list[dict[str, Any]]:
    log = pipeline.event_log
    assert isinstance(log, InMemoryEventLog)

    return [
        decode_envelope(m.value).model_dump(mode="json")
        for m in log.messages(stream_of(entity))
    ]


def test_loading_the_same_files_twice_leaves_the_same_documents(
    crm: MongoCrmStore, source: Path
) -> None:
    """A second load of unchanged files changes no document and feeds nothing."""
    first = load_directory(source, crm)
    before = snapshot(crm)
    feed = crm.changes(Entity.PURCHASE, 0, 1000)

    second = load_directory(source, crm)

    assert (first.upserts.inserted, first.problems) == (RECORDS, [])
    assert (second.upserts.inserted, second.upserts.updated) == (0, 0)
    assert second.upserts.unchanged == RECORDS
    assert snapshot(crm) == before
    assert crm.changes(Entity.PURCHASE, 0, 1000) == feed


def test_a_malformed_file_is_reported_and_the_rest_loads(
    crm: MongoCrmStore, source: Path
) -> None:
    """A broken JSON file is named among the problems; every other record lands."""
    broken = source / "stores" / "broken.json"
    broken.write_text('{"store_id": "store-999", "store_name": ', encoding="utf-8")

    report = load_directory(source, crm)

    assert [where for where, _ in report.problems] == [str(broken)]
    assert "not valid JSON" in report.problems[0][1]
    assert report.loaded == RECORDS
    assert sum(crm.count(entity) for entity in Entity) == RECORDS


def test_an_updated_document_publishes_a_new_event_version(
    crm: MongoCrmStore, source: Path
) -> None:
    """Only the changed store is published again, carrying its new content."""
    pipeline = pipeline_on(crm)
    pipeline.load(source)
    pipeline.publish()
    path = sorted((source / "stores").glob("*.json"))[0]
    document = json.loads(path.read_text(encoding="utf-8"))
    document["store_name"] = "Пикча на новом месте"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")

    pipeline.load(source)
    report = pipeline.publish()

    assert report.published == {"store": 1, "product": 0, "customer": 0, "purchase": 0}
    versions = [
        e for e in events(pipeline, Entity.STORE) if e["entity_id"] == path.stem
    ]
    names = [e["payload"]["store_name"] for e in versions]
    assert names[1:] == ["Пикча на новом месте"] and names[0] != names[1]
    assert versions[0]["content_hash"] != versions[1]["content_hash"]


def test_an_unchanged_crm_publishes_nothing_until_a_resend(
    crm: MongoCrmStore, source: Path
) -> None:
    """A second publish sends nothing; publish(resend=True) sends every document."""
    pipeline = pipeline_on(crm)
    pipeline.load(source)
    first = pipeline.publish()

    again = pipeline.publish()
    resent = pipeline.publish(resend=True)

    assert (first.total, again.total, resent.total) == (RECORDS, 0, RECORDS)


def test_the_crm_keeps_personal_data_that_no_event_carries(
    crm: MongoCrmStore, source: Path
) -> None:
    """Raw emails and phones stay in the CRM; the events hold none of them."""
    pipeline = pipeline_on(crm)
    pipeline.load(source)
    pipeline.publish()

    files = [json.loads(p.read_text("utf-8")) for p in source.glob("customers/*")]
    originals = {customer["customer_id"]: customer for customer in files}
    stored = {d["customer_id"]: d for d in crm.scan(Entity.CUSTOMER)}
    assert stored == originals
    secrets = {
        value
        for customer in stored.values()
        for value in (customer["email"], customer["phone"])
        if value
    }
    published = "\n".join(
        json.dumps(e, ensure_ascii=False)
        for entity in Entity
        for e in events(pipeline, entity)
    )
    assert len(secrets) >= len(stored)
    assert not [s for s in secrets if s in published or s.lower() in published]


@pytest.mark.timeout(20)
def test_an_unreachable_server_fails_fast_naming_host_and_setting() -> None:
    """Nothing listening: an InfrastructureError names the host and PIKCHA_CRM."""
    port = free_port()
    settings = Settings(crm=f"mongodb://pikcha:s3cret-pw@127.0.0.1:{port}/pikcha")

    with pytest.raises(InfrastructureError) as caught:
        make_crm(settings)

    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "PIKCHA_CRM" in message
    assert "s3cret-pw" not in message
    assert caught.value.transient


def test_a_url_pymongo_cannot_parse_is_a_configuration_error() -> None:
    """A malformed connection string is refused before any network traffic."""
    with pytest.raises(ConfigurationError, match="PIKCHA_CRM=mongodb://h:port"):
        MongoCrmStore("mongodb://h:port/pikcha")


@pytest.fixture
def fail_commands(mongodb_url: str) -> Iterator[Callable[[int, list[str]], str]]:
    """Arms a failCommand point for one client name; disarms it afterwards."""
    name = f"pikcha-{uuid.uuid4().hex[:8]}"
    with MongoClient(mongodb_url, serverSelectionTimeoutMS=2000) as admin:

        def arm(times: int, commands: list[str]) -> str:
            try:
                admin.admin.command(
                    {
                        "configureFailPoint": "failCommand",
                        "mode": {"times": times},
                        "data": {
                            "failCommands": commands,
                            "closeConnection": True,
                            "appName": name,
                        },
                    }
                )
            except OperationFailure as exc:
                pytest.skip(f"the server has no test commands ({exc.code})")

            return name

        yield arm
        admin.admin.command({"configureFailPoint": "failCommand", "mode": "off"})


def test_dropped_connections_are_retried(
    mongodb_crm_url: str, fail_commands: Callable[[int, list[str]], str]
) -> None:
    """Three connections closed in a row under one client still store the batch."""
    crm = MongoCrmStore(mongodb_crm_url)
    app = fail_commands(3, ["find", "insert", "update"])
    flaky = MongoCrmStore(with_app(mongodb_crm_url, app))

    report = flaky.upsert(Entity.STORE, [{"store_id": "s1"}, {"store_id": "s2"}])

    assert report.inserted == 2
    assert [c.entity_id for c in crm.changes(Entity.STORE, 0, 10)] == ["s1", "s2"]
    flaky.close()
    crm.close()


def test_retries_give_up_with_a_transient_error(
    mongodb_crm_url: str, fail_commands: Callable[[int, list[str]], str]
) -> None:
    """Without retries a dropped connection surfaces as a transient error."""
    app = fail_commands(2, ["count", "aggregate"])
    flaky = MongoCrmStore(with_app(mongodb_crm_url, app), retries=0)

    with pytest.raises(InfrastructureError, match="counting stores") as caught:
        flaky.count(Entity.STORE)

    assert caught.value.transient
    flaky.close()


def with_app(url: str, app: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}appName={app}"


def pikcha(home: Path, crm_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PIKCHA_")}
    # The ClickHouse engine keeps Spark's start-up out of a test of the CRM.
    environment.update(
        PIKCHA_HOME=str(home / "var"), PIKCHA_CRM=crm_url, PIKCHA_FEATURES="clickhouse"
    )

    return subprocess.run(
        [sys.executable, "-m", "pikcha.entrypoints.cli", *args],
        cwd=home,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_pikcha_run_goes_end_to_end_on_mongodb(
    tmp_path: Path, mongodb_crm_url: str
) -> None:
    """``pikcha run`` with PIKCHA_CRM=mongodb:// loads, publishes and exports."""
    result = pikcha(
        tmp_path,
        mongodb_crm_url,
        "run",
        "--now",
        "2025-09-30T12:00:00",
        "--as-of",
        "2025-09-30",
    )

    assert result.returncode == 0, result.stderr
    for stage in ("generate", "load", "publish", "project", "features", "quality"):
        assert stage in result.stdout
    assert "records 1185" in result.stdout and "events 1185" in result.stdout
    exported = tmp_path / "var" / "objects" / "features"
    with (exported / "analytic_result_2025_09_30.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows and "customer_id" in rows[0]
    crm = MongoCrmStore(mongodb_crm_url)
    assert crm.count(Entity.PURCHASE) == 1000
    crm.close()


def test_pikcha_load_and_publish_use_mongodb(
    tmp_path: Path, mongodb_crm_url: str, source: Path
) -> None:
    """``pikcha load`` fills the MongoDB CRM and ``pikcha publish`` feeds once."""
    loaded = pikcha(tmp_path, mongodb_crm_url, "load", str(source))
    published = pikcha(tmp_path, mongodb_crm_url, "publish")
    reloaded = pikcha(tmp_path, mongodb_crm_url, "load", str(source))
    republished = pikcha(tmp_path, mongodb_crm_url, "publish")

    assert loaded.returncode == 0, loaded.stderr
    assert f"loaded {RECORDS} records" in loaded.stdout
    assert f"({RECORDS} new, 0 changed" in loaded.stdout
    assert f"published {RECORDS} events" in published.stdout
    assert f"0 new, 0 changed, {RECORDS} unchanged" in reloaded.stdout
    assert "published 0 events" in republished.stdout
