"""Envelopes, their canonical bytes and schema upcasting."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pikcha.domain import events
from pikcha.domain.entities import Entity
from pikcha.domain.errors import EnvelopeError
from pikcha.domain.events import (
    Envelope,
    canonical_json,
    content_hash,
    decode_envelope,
    make_envelope,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=25,
)
json_objects = st.dictionaries(st.text(), json_values, max_size=6)
aware_times = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=3))]),
)
ids = st.text(min_size=1, max_size=20)

OCCURRED = datetime(2025, 9, 24, 20, 46, 44, 824710, tzinfo=UTC)


def reversed_keys(value: Any) -> Any:
    """The same JSON value with every object's keys inserted in reverse order."""
    if isinstance(value, dict):
        return {key: reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_keys(item) for item in value]

    return value


def envelope(payload: dict[str, Any] | None = None, **overrides: Any) -> Envelope:
    arguments: dict[str, Any] = {
        "entity": Entity.STORE,
        "entity_id": "store-001",
        "masked_payload": {"store_id": "store-001"} if payload is None else payload,
        "event_id": "evt-1",
        "occurred_at": OCCURRED,
        "source": "data/stores/store-001.json",
        "mask_key_id": "k1",
    }

    return make_envelope(**{**arguments, **overrides})


def document(**changes: Any) -> dict[str, Any]:
    """The decoded JSON object of a valid envelope, with some keys changed."""
    doc: dict[str, Any] = json.loads(envelope().to_bytes())
    doc.update(changes)

    return doc


def encoded(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


@given(value=json_values)
def test_canonical_json_does_not_depend_on_key_order(value: Any) -> None:
    """Inserting keys in another order gives the same bytes."""
    assert canonical_json(value) == canonical_json(reversed_keys(value))


@given(value=json_values)
def test_canonical_json_reads_back_equal(value: Any) -> None:
    """json.loads of the canonical bytes gives back an equal value."""
    assert json.loads(canonical_json(value)) == value


def test_canonical_json_is_compact_sorted_utf8() -> None:
    """Keys are sorted, separators carry no spaces and text is not escaped."""
    assert canonical_json({"b": [1, 2], "a": "Пикча"}) == (
        '{"a":"Пикча","b":[1,2]}'.encode()
    )


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_canonical_json_rejects_nan_and_infinity(number: float) -> None:
    """A non-finite float has no canonical form."""
    with pytest.raises(EnvelopeError):
        canonical_json({"price": [1.0, {"value": number}]})


def test_canonical_json_rejects_a_lone_surrogate_as_an_envelope_error() -> None:
    """A string that UTF-8 cannot carry fails as a Pikcha error, not a codec one."""
    with pytest.raises(EnvelopeError):
        canonical_json({"name": "\ud800"})


@given(payload=json_objects)
def test_content_hash_does_not_depend_on_key_order(payload: dict[str, Any]) -> None:
    """The same payload with keys in another order has the same hash."""
    assert content_hash(payload) == content_hash(reversed_keys(payload))


@given(first=json_objects, second=json_objects)
def test_content_hash_differs_for_different_payloads(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    """Payloads with different canonical forms have different hashes."""
    assume(canonical_json(first) != canonical_json(second))

    assert content_hash(first) != content_hash(second)


def test_content_hash_of_one_changed_value_differs() -> None:
    """A price changed by a kopeck changes the hash."""
    assert content_hash({"id": "p", "price": 54.1}) != content_hash(
        {"id": "p", "price": 54.11}
    )


@given(
    entity=st.sampled_from(list(Entity)),
    entity_id=ids,
    payload=json_objects,
    event_id=ids,
    occurred_at=aware_times,
    source=st.text(max_size=30),
)
def test_an_envelope_survives_its_bytes(
    entity: Entity,
    entity_id: str,
    payload: dict[str, Any],
    event_id: str,
    occurred_at: datetime,
    source: str,
) -> None:
    """decode_envelope(to_bytes()) gives back an equal envelope."""
    original = envelope(
        payload,
        entity=entity,
        entity_id=entity_id,
        event_id=event_id,
        occurred_at=occurred_at,
        source=source,
    )

    decoded = decode_envelope(original.to_bytes())

    assert decoded == original
    assert decoded.to_bytes() == original.to_bytes()


def test_make_envelope_fills_type_version_and_hash() -> None:
    """The envelope carries the entity's type, current version and payload hash."""
    made = envelope({"store_id": "store-001", "type": "offline"})

    assert made.event_type == "store.upserted"
    assert made.entity is Entity.STORE
    assert made.schema_version == events.SCHEMA_VERSION
    assert made.content_hash == content_hash(
        {"type": "offline", "store_id": "store-001"}
    )


def test_make_envelope_stores_occurred_at_in_utc() -> None:
    """An aware time in another zone is kept as the same instant in UTC."""
    moscow = timezone(timedelta(hours=3))

    made = envelope(occurred_at=datetime(2025, 9, 24, 23, 0, tzinfo=moscow))

    assert made.occurred_at == datetime(2025, 9, 24, 20, 0, tzinfo=UTC)
    assert made.occurred_at.utcoffset() == timedelta(0)


def test_make_envelope_rejects_a_naive_occurred_at() -> None:
    """A time without a zone is refused."""
    with pytest.raises(EnvelopeError, match="occurred_at"):
        envelope(occurred_at=datetime(2025, 9, 24, 20, 46))


@pytest.mark.parametrize("data", [b"", b"nope", b'{"event_id": ', b"{'a': 1}"])
def test_decode_rejects_bytes_that_are_not_json(data: bytes) -> None:
    """Text that does not parse as JSON is an envelope error."""
    with pytest.raises(EnvelopeError, match="not JSON"):
        decode_envelope(data)


@pytest.mark.parametrize("data", [b"[]", b"1", b'"envelope"', b"null"])
def test_decode_rejects_json_that_is_not_an_object(data: bytes) -> None:
    """An envelope is a JSON object."""
    with pytest.raises(EnvelopeError, match="object"):
        decode_envelope(data)


def test_decode_rejects_an_unknown_event_type() -> None:
    """An event type no entity has is refused and named."""
    with pytest.raises(EnvelopeError, match=r"store\.deleted"):
        decode_envelope(encoded(document(event_type="store.deleted")))


@pytest.mark.parametrize(
    "field",
    [
        "event_id",
        "event_type",
        "entity_id",
        "occurred_at",
        "source",
        "content_hash",
        "mask_key_id",
        "payload",
    ],
)
def test_decode_rejects_an_envelope_missing_a_field(field: str) -> None:
    """Every envelope field is required, and the message names the missing one."""
    doc = document()
    del doc[field]

    with pytest.raises(EnvelopeError, match=f"'{field}'"):
        decode_envelope(encoded(doc))


def test_decode_rejects_an_envelope_without_schema_version() -> None:
    """A document with no version cannot be upcast."""
    doc = document()
    del doc["schema_version"]

    with pytest.raises(EnvelopeError, match="schema_version"):
        decode_envelope(encoded(doc))


def test_decode_rejects_a_newer_schema_version_asking_to_upgrade() -> None:
    """An event written by a newer Pikcha tells the reader to upgrade."""
    newer = events.SCHEMA_VERSION + 1

    with pytest.raises(EnvelopeError, match=rf"schema_version {newer}.*upgrade"):
        decode_envelope(encoded(document(schema_version=newer)))


def test_decode_rejects_an_unknown_field() -> None:
    """Envelopes carry exactly their fields."""
    with pytest.raises(EnvelopeError, match="'partition'"):
        decode_envelope(encoded(document(partition=3)))


def test_decode_rejects_bytes_that_are_not_utf8() -> None:
    """Latin-1 bytes inside a JSON string are refused."""
    data = encoded(document()).replace(b'"k1"', b'"k\xe9"')

    with pytest.raises(EnvelopeError):
        decode_envelope(data)


def test_decode_rejects_a_utf16_encoding_of_a_valid_envelope() -> None:
    """The wire form is UTF-8; the same JSON in UTF-16 is not an envelope."""
    data = envelope().to_bytes().decode("utf-8").encode("utf-16")

    with pytest.raises(EnvelopeError):
        decode_envelope(data)


def test_decode_rejects_a_nan_constant() -> None:
    """The JSON extension NaN is not accepted inside an envelope."""
    data = envelope().to_bytes().replace(b'"payload":{', b'"payload":{"x":NaN,')
    assert b"NaN" in data

    with pytest.raises(EnvelopeError, match="NaN"):
        decode_envelope(data)


def test_upcasters_bring_an_old_envelope_to_the_current_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Registered steps run in order from the stored version to the current one."""

    def one_to_two(doc: dict[str, Any]) -> dict[str, Any]:
        payload = {**doc["payload"], "steps": ["1->2"]}
        return {**doc, "schema_version": 2, "payload": payload}

    def two_to_three(doc: dict[str, Any]) -> dict[str, Any]:
        payload = {**doc["payload"], "steps": [*doc["payload"]["steps"], "2->3"]}
        return {**doc, "schema_version": 3, "payload": payload}

    monkeypatch.setattr(events, "SCHEMA_VERSION", 3)
    monkeypatch.setattr(events, "UPCASTERS", {1: one_to_two, 2: two_to_three})

    decoded = decode_envelope(encoded(document(schema_version=1)))

    assert decoded.schema_version == 3
    assert decoded.payload["steps"] == ["1->2", "2->3"]


def test_decode_without_an_upcaster_for_an_old_version_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A gap in the upcaster chain is reported with the stuck version."""
    monkeypatch.setattr(events, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(events, "UPCASTERS", {})

    with pytest.raises(EnvelopeError, match="no upcaster from schema_version 1"):
        decode_envelope(encoded(document(schema_version=1)))


@pytest.mark.parametrize("version", ["1", 1.0, True, None])
def test_decode_rejects_a_schema_version_that_is_not_a_whole_number(
    version: Any,
) -> None:
    """Only a JSON integer is a schema version."""
    with pytest.raises(EnvelopeError, match="whole number"):
        decode_envelope(encoded(document(schema_version=version)))


@pytest.mark.parametrize("entity", list(Entity))
def test_each_entity_has_its_own_stream_and_event_type(entity: Entity) -> None:
    """Streams are the plural of the entity; event types map back to the entity."""
    assert events.stream_of(entity) == f"{entity.value}s"
    assert events.ENTITY_OF_TYPE[events.EVENT_TYPES[entity]] is entity
