"""The use cases over the in-memory harness: load, publish, project, check."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path

import pytest

from pikcha.adapters.memory import InMemoryEventLog
from pikcha.application.project import ProjectorConfig
from pikcha.domain.entities import Entity
from pikcha.domain.events import DEAD_LETTERS, decode_envelope
from pikcha.ports.event_log import OutgoingMessage
from pikcha.testing import fixed_clock, memory_pipeline, sequential_ids
from tests.unit.domain.records import customer, product, purchase, store

NOW = datetime(2025, 9, 30, 12, 0)


def write_source(root: Path, records: dict[str, list[dict[str, object]]]) -> Path:
    for folder, items in records.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for number, item in enumerate(items):
            (root / folder / f"{number:04d}.json").write_text(
                json.dumps(item, ensure_ascii=False), encoding="utf-8"
            )

    return root


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_source(
        tmp_path / "data",
        {
            "stores": [store()],
            "products": [product()],
            "customers": [customer()],
            "purchases": [purchase()],
        },
    )


def pipeline(**overrides: object):  # type: ignore[no-untyped-def]
    return memory_pipeline(clock=fixed_clock(NOW), new_id=sequential_ids(), **overrides)


def test_load_publish_project_reaches_the_clean_layer(source: Path) -> None:
    """One record of each entity flows from files to one clean row each."""
    pipe = pipeline()
    assert pipe.load(source).loaded == 4
    assert pipe.publish().total == 4
    report = pipe.project()

    assert report.projected == 4 and report.dead_lettered == 0
    for entity in Entity:
        assert len(list(pipe.warehouse.clean_rows(entity))) == 1


def test_publish_masks_personal_data_in_every_event(source: Path) -> None:
    """No email, phone or card number of the source reaches an event."""
    pipe = pipeline()
    pipe.load(source)
    pipe.publish()
    log = pipe.event_log
    assert isinstance(log, InMemoryEventLog)

    with log.consumer("scan", ["stores", "customers"]) as consumer:
        text = b"".join(m.value for m in consumer.poll(100)).decode("utf-8")
    for secret in (
        "Anna.S@Example.com",
        "anna.s@example.com",
        "912 345 67 89",
        "LOYAL-B566CFC017",
        "anna@example.org",
        "345-67-89",
    ):
        assert secret not in text


def test_publishing_twice_publishes_nothing_new(source: Path) -> None:
    """The change feed position is kept: a second publish finds no change."""
    pipe = pipeline()
    pipe.load(source)
    pipe.publish()

    assert pipe.publish().total == 0


def test_resend_publishes_repeated_data_with_new_ids(source: Path) -> None:
    """A re-send makes new events with the same content hash."""
    pipe = pipeline()
    pipe.load(source)
    pipe.publish()
    pipe.publish(resend=True)
    pipe.project()

    metrics = {m.table: m for m in pipe.warehouse.quality()}
    assert metrics["raw_customers"].rows == 2
    assert metrics["raw_customers"].distinct == 1


def test_a_record_sent_twice_in_one_load_is_published_twice(tmp_path: Path) -> None:
    """The same file twice in a load counts as a re-send, not as nothing."""
    root = write_source(tmp_path, {"customers": [customer(), customer()]})
    pipe = pipeline()
    report = pipe.load(root)

    assert report.resent == 1
    assert pipe.publish().published["customer"] == 2


def test_unreadable_files_are_reported_and_the_rest_loaded(tmp_path: Path) -> None:
    """A broken file is named with its reason; the good ones load."""
    root = write_source(tmp_path, {"products": [product()]})
    (root / "products" / "broken.json").write_text("{not json", encoding="utf-8")
    (root / "products" / "shape.json").write_text('{"id": 5}', encoding="utf-8")
    report = pipeline().load(root)

    assert report.loaded == 1
    reasons = dict(report.problems)
    assert "not valid JSON" in reasons[str(root / "products" / "broken.json")]
    assert "id" in reasons[str(root / "products" / "shape.json")]


def test_poison_messages_are_dead_lettered_and_projection_goes_on(source: Path) -> None:
    """Bad JSON, unknown types, bad payloads and oversized messages are kept
    with their reasons, and the good events around them are projected."""
    pipe = pipeline(projector=ProjectorConfig(max_message_bytes=4096))
    pipe.load(source)
    pipe.publish()
    good = json.loads(pipe_first(pipe, "products"))
    unknown = dict(good, event_id="x1", event_type="product.exploded")
    bad_payload = dict(good, event_id="x2", payload={"id": 7})
    poison = [
        b"{not json",
        json.dumps(unknown).encode(),
        json.dumps(bad_payload).encode(),
        b'{"pad": "' + b"x" * 5000 + b'"}',
    ]
    pipe.event_log.append(
        "products", [OutgoingMessage(key="p", value=value) for value in poison]
    )
    report = pipe.project()

    assert report.dead_lettered == 4
    assert report.projected == 4
    with pipe.event_log.consumer("dl", [DEAD_LETTERS]) as consumer:
        letters = [json.loads(m.value) for m in consumer.poll(10)]
    assert {base64.b64decode(letter["value_base64"]) for letter in letters} == set(
        poison
    )
    assert all(letter["reason"] for letter in letters)


def pipe_first(pipe, stream: str) -> bytes:  # type: ignore[no-untyped-def]
    with pipe.event_log.consumer("peek", [stream]) as consumer:
        return consumer.poll(1)[0].value


def test_redelivered_events_leave_no_trace(source: Path) -> None:
    """Projecting the same events again under a new group changes nothing."""
    pipe = pipeline()
    pipe.load(source)
    pipe.publish()
    pipe.project()
    before = pipe.warehouse.dump()
    again = pipeline(
        event_log=pipe.event_log,
        warehouse=pipe.warehouse,
        projector=ProjectorConfig(group="second"),
    )
    report = again.project()

    assert report.projected == 4 and report.new == 0
    assert pipe.warehouse.dump() == before


def test_quality_alerts_once_per_table_over_the_threshold(source: Path) -> None:
    """Two re-sends make every table two-thirds repeated: four alerts."""
    pipe = pipeline()
    pipe.load(source)
    pipe.publish()
    pipe.publish(resend=True)
    pipe.publish(resend=True)
    pipe.project()
    report = pipe.check_quality("check-1")

    assert sorted(report.alerted) == [
        "raw_customers",
        "raw_products",
        "raw_purchases",
        "raw_stores",
    ]
    assert len(pipe.notifier.sent) == 4
    assert "66.7%" in pipe.notifier.sent[0].text


def test_no_alert_at_exactly_half_repeated(source: Path) -> None:
    """A share of exactly 0.5 is not above the threshold."""
    pipe = pipeline()
    pipe.load(source)
    pipe.publish()
    pipe.publish(resend=True)
    pipe.project()

    assert pipe.check_quality().alerted == []


def test_features_export_writes_csv_parquet_and_manifest(source: Path) -> None:
    """The export names files by the as_of date and describes them."""
    pipe = pipeline()
    pipe.load(source)
    pipe.publish()
    pipe.project()
    export = pipe.export_features(datetime(2025, 9, 30, 23, 59, 59))

    assert export.csv_key == "features/analytic_result_2025_09_30.csv"
    manifest = json.loads(pipe.objects.get(export.manifest_key))
    assert manifest["rows"] == 1 and manifest["engine"] == "reference"
    header, row = pipe.objects.get(export.csv_key).decode().splitlines()
    assert header.startswith("customer_id,bought_milk_last_30d,")
    assert row.startswith("cus-1000,")


def test_envelopes_carry_the_event_metadata(source: Path) -> None:
    """Published envelopes decode and name their mask key and source."""
    pipe = pipeline()
    pipe.load(source)
    pipe.publish()
    envelope = decode_envelope(pipe_first(pipe, "customers"))

    assert envelope.mask_key_id == "test"
    assert envelope.source == "crm"
    assert envelope.entity_id == "cus-1000"


def test_a_failed_alert_does_not_silence_the_others(source: Path) -> None:
    """Every table over the threshold is tried; the failure is reported after."""
    from pikcha.adapters.memory import InMemoryNotifier
    from pikcha.domain.errors import InfrastructureError

    class Flaky(InMemoryNotifier):
        def send(self, alert):  # type: ignore[no-untyped-def]
            if alert.labels["table"] == "raw_customers":
                raise InfrastructureError("chat unreachable")
            super().send(alert)

    notifier = Flaky()
    pipe = pipeline(notifier=notifier)
    pipe.load(source)
    for _ in range(3):
        pipe.publish(resend=True)
    pipe.project()

    with pytest.raises(InfrastructureError, match="1 of 4 alerts"):
        pipe.check_quality("check-2")
    assert len(notifier.sent) == 3
