"""Event envelopes and their canonical wire form.

An envelope carries one change of one record: its masked payload plus the
metadata to route, deduplicate and replay it. The canonical form is UTF-8 JSON
with sorted keys, no insignificant white space and no NaN or infinity, so that
equal envelopes are equal bytes and :func:`content_hash` is stable.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from pikcha.domain.entities import Entity
from pikcha.domain.errors import EnvelopeError

SCHEMA_VERSION = 1
DEAD_LETTERS = "dead_letters"

EVENT_TYPES: Mapping[Entity, str] = {
    Entity.STORE: "store.upserted",
    Entity.PRODUCT: "product.upserted",
    Entity.CUSTOMER: "customer.upserted",
    Entity.PURCHASE: "purchase.recorded",
}
ENTITY_OF_TYPE: Mapping[str, Entity] = {
    value: key for key, value in EVENT_TYPES.items()
}


def stream_of(entity: Entity) -> str:
    """The stream that carries the events of an entity."""
    return f"{entity.value}s"


def canonical_json(value: Any) -> bytes:
    """The canonical bytes of a JSON value; raises on NaN or infinity."""
    fast = _plain_json(value)
    if fast is not None:
        return fast

    return _reference_json(value)


# orjson writes the same bytes as the json module for plain JSON values: exact
# dicts with str keys, lists, text, booleans, null, integers within 64 bits and
# finite floats from 1e-4 up (below, orjson writes 1e-05 as 0.00001). Anything
# else takes the json module's path, which stays the reference for every value
# and every error.
_SMALLEST_PLAIN_FLOAT = 1e-4
_INT64 = (-(1 << 63), 1 << 63)
_PLAIN_DEPTH = 200  # below orjson's own nesting limit of 255


def _plain_json(value: Any) -> bytes | None:
    """The canonical bytes through orjson when the value is plain, else None."""
    if not _plain(value, 0):
        return None
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        # A lone surrogate or a key that is not text: the reference path
        # writes or refuses it as it always has.
        return None


def _plain(value: Any, depth: int) -> bool:
    # Keys go unchecked: orjson refuses any key that is not exactly a str.
    kind = type(value)
    if kind is dict:
        if depth > _PLAIN_DEPTH:
            return False
        items = value.values()
    elif kind is list:
        if depth > _PLAIN_DEPTH:
            return False
        items = value
    else:
        items = (value,)
    for item in items:
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is float:
            # False for NaN too: every comparison with NaN is.
            if not (item == 0.0 or _SMALLEST_PLAIN_FLOAT <= abs(item) < math.inf):
                return False
        elif kind is int:
            if not _INT64[0] <= item < _INT64[1]:
                return False
        elif kind is dict or kind is list:
            if not _plain(item, depth + 1):
                return False
        else:
            return False

    return True


def _reference_json(value: Any) -> bytes:
    try:
        text = json.dumps(
            value,
            ensure_ascii=False,
            sort_keys=True,
            separators=(",", ":"),
            allow_nan=False,
            default=_default,
        )
        return text.encode("utf-8")
    except ValueError as exc:
        # UnicodeEncodeError (a lone surrogate) is a ValueError too.
        raise EnvelopeError(f"value cannot be serialised canonically: {exc}") from exc
    except RecursionError:
        # A value decoded just under the recursion limit can meet it here.
        raise EnvelopeError("value nested too deeply to serialise") from None


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def content_hash(masked_payload: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical form of a masked payload, as hex."""
    return hashlib.sha256(canonical_json(masked_payload)).hexdigest()


class Envelope(BaseModel):
    """One event: the masked payload of one record and its metadata."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(min_length=1)
    event_type: str
    schema_version: int = Field(ge=1)
    entity_id: str
    occurred_at: datetime
    source: str
    content_hash: str
    mask_key_id: str
    payload: dict[str, Any]

    @property
    def entity(self) -> Entity:
        try:
            return ENTITY_OF_TYPE[self.event_type]
        except KeyError:
            raise EnvelopeError(f"unknown event type {self.event_type!r}") from None

    def to_bytes(self) -> bytes:
        payload = _plain_json(self.payload)
        metadata = {
            "content_hash": self.content_hash,
            "entity_id": self.entity_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "mask_key_id": self.mask_key_id,
            "occurred_at": _MOMENT.dump_python(self.occurred_at, mode="json"),
            "schema_version": self.schema_version,
            "source": self.source,
        }
        if payload is not None and _plain(metadata, 0):
            # The payload's bytes are already canonical: orjson copies them in.
            metadata["payload"] = orjson.Fragment(payload)
            try:
                return orjson.dumps(metadata, option=orjson.OPT_SORT_KEYS)
            except orjson.JSONEncodeError:
                pass

        return canonical_json(self.model_dump(mode="json"))


# Serialises a datetime exactly as the envelope's own field does.
_MOMENT: TypeAdapter[datetime] = TypeAdapter(datetime)


def make_envelope(
    *,
    entity: Entity,
    entity_id: str,
    masked_payload: Mapping[str, Any],
    event_id: str,
    occurred_at: datetime,
    source: str,
    mask_key_id: str,
) -> Envelope:
    """An envelope for a masked payload; ids and time are given, never made here."""
    if occurred_at.tzinfo is None:
        raise EnvelopeError("occurred_at must be timezone-aware")
    payload = dict(masked_payload)

    return Envelope(
        event_id=event_id,
        event_type=EVENT_TYPES[entity],
        schema_version=SCHEMA_VERSION,
        entity_id=entity_id,
        occurred_at=occurred_at.astimezone(UTC),
        source=source,
        content_hash=content_hash(payload),
        mask_key_id=mask_key_id,
        payload=payload,
    )


# Upcasters take a decoded envelope of version N to version N + 1. When the
# payload of an event type changes shape, register the step here; decoding then
# brings every stored event to SCHEMA_VERSION before anything reads it.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: Mapping[int, Upcaster] = {}


def upcast(document: dict[str, Any]) -> dict[str, Any]:
    version = document.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise EnvelopeError(f"schema_version {version!r} is not a whole number")
    if version > SCHEMA_VERSION:
        raise EnvelopeError(
            f"schema_version {version} is newer than this Pikcha reads "
            f"({SCHEMA_VERSION}); upgrade Pikcha"
        )
    while version < SCHEMA_VERSION:
        step = UPCASTERS.get(version)
        if step is None:
            raise EnvelopeError(f"no upcaster from schema_version {version}")
        document = step(document)
        version = document["schema_version"]

    return document


def decode_envelope(data: bytes) -> Envelope:
    """Decode canonical bytes into an envelope; raises :class:`EnvelopeError`."""
    return decode_with_payload(data)[0]


def decode_with_payload(data: bytes) -> tuple[Envelope, bytes]:
    """Decode an envelope and give the canonical bytes of its payload too."""
    fast = _decode_plain(data)
    if fast is not None:
        return fast
    envelope = _validate(upcast(_load(data)))

    return envelope, canonical_json(envelope.payload)


# orjson reads and writes what the json module does, with these exceptions,
# each sent to the json module so that values, bytes and reasons stay its own:
# - a number below 1e-4 is written 0.00001 instead of 1e-05: it has a negative
#   exponent or starts 0.0000 in the message;
# - an integer beyond 64 bits is read as a float: in the payload it is then
#   written with "e+", elsewhere it is a float where none belongs;
# - nesting past 255 is refused when written, numbers that overflow to
#   infinity and lone surrogates when read.
def _decode_plain(data: bytes) -> tuple[Envelope, bytes] | None:
    if b"0.0000" in data or _negative_exponent(data):
        return None
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if type(document) is not dict or type(document.get("payload")) is not dict:
        return None
    version = document.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:
        return None
    if any(type(value) is float for value in document.values()):
        return None
    try:
        payload = orjson.dumps(document["payload"], option=orjson.OPT_SORT_KEYS)
        envelope = _validate(document)
    except (orjson.JSONEncodeError, EnvelopeError):
        # Refusals are worded by the json module's path.
        return None
    if b"e+" in payload:
        return None

    return envelope, payload


def _negative_exponent(data: bytes) -> bool:
    for marker in (b"e-", b"E-"):
        at = data.find(marker, 1)
        while at != -1:
            if data[at - 1] in _DIGITS:
                return True
            at = data.find(marker, at + 2)

    return False


_DIGITS = frozenset(b"0123456789")


def _validate(document: dict[str, Any]) -> Envelope:
    try:
        envelope = Envelope.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise EnvelopeError(f"field '{where}': {first['msg']}") from None
    if envelope.event_type not in ENTITY_OF_TYPE:
        raise EnvelopeError(f"unknown event type {envelope.event_type!r}")

    return envelope


def _load(data: bytes) -> dict[str, Any]:
    try:
        # Strictly UTF-8: json.loads would also guess UTF-16 or a BOM.
        text = data.decode("utf-8")
        document = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EnvelopeError(f"not JSON: {exc}") from None
    except RecursionError:
        raise EnvelopeError("not JSON: nested too deeply to decode") from None
    if not isinstance(document, dict):
        raise EnvelopeError("an envelope must be a JSON object")
    if _SURROGATE_ESCAPE.search(text):
        _check_unicode(document)

    return document


# Valid UTF-8 holds no surrogate; only a \u escape can make one, so the full
# check runs only on text that has such an escape (an emoji's pair included).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _check_unicode(document: dict[str, Any]) -> None:
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        lone = exc.object[exc.start : exc.end]
        raise EnvelopeError(
            f"not valid Unicode: a lone surrogate {lone!r} that no warehouse can store"
        ) from None
    except RecursionError:
        raise EnvelopeError("not JSON: nested too deeply to decode") from None


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


def is_finite_json(value: Any) -> bool:
    """True when no float in the value is NaN or infinite."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Mapping):
        return all(is_finite_json(item) for item in value.values())
    if isinstance(value, list):
        return all(is_finite_json(item) for item in value)

    return True
