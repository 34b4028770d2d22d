"""The orjson paths of envelopes give the json module's bytes, values and errors."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pikcha.domain import events
from pikcha.domain.entities import Entity
from pikcha.domain.errors import EnvelopeError
from pikcha.domain.events import (
    canonical_json,
    decode_envelope,
    decode_with_payload,
    make_envelope,
)

floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.0, -0.0, 1e-4, 9.999999999999999e-05, 1e-05, 1.5e-07, 1e16, 1e15, 5e-324]
)
integers = st.integers() | st.sampled_from([2**63 - 1, 2**63, -(2**63), 2**64])
scalars = st.none() | st.booleans() | integers | floats | st.text()
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=30,
)
payloads = st.dictionaries(st.text(), json_values, max_size=5)
# Number tokens as any producer might write them, beyond what json.dumps writes.
number_texts = st.builds(
    lambda sign, whole, fraction, exponent: f"{sign}{whole}{fraction}{exponent}",
    st.sampled_from(["", "-"]),
    st.integers(0, 10**25).map(str),
    st.sampled_from(["", ".0", ".5", ".0001", ".00001", ".123456789012345678"]),
    st.sampled_from(["", "e5", "E-5", "e+16", "e-400", "E400", "e-05", "e0"]),
)


def reference(value: Any) -> bytes:
    """The canonical bytes as the json module writes them."""
    text = json.dumps(
        value,
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
        allow_nan=False,
    )

    return text.encode("utf-8")


def typed(value: Any) -> Any:
    """A value compared with its types: 1, 1.0, True and -0.0 all differ."""
    if isinstance(value, dict):
        return ("dict", sorted((key, typed(item)) for key, item in value.items()))
    if isinstance(value, list):
        return ("list", [typed(item) for item in value])

    return (type(value).__name__, repr(value))


def wrapped(payload_text: str) -> bytes:
    """Envelope bytes around a payload written as given."""
    made = make_envelope(
        entity=Entity.STORE,
        entity_id="store-001",
        masked_payload={"store_id": "store-001"},
        event_id="evt-1",
        occurred_at=datetime(2025, 9, 1, tzinfo=UTC),
        source="test",
        mask_key_id="k1",
    )
    head, _, tail = made.to_bytes().partition(b'"payload":{"store_id":"store-001"}')

    return head + b'"payload":' + payload_text.encode() + tail


@given(json_values)
def test_canonical_json_writes_the_json_modules_bytes(value: Any) -> None:
    """Floats of every exponent, wide integers, any text and nesting: same bytes."""
    try:
        expected = reference(value)
    except ValueError:
        with pytest.raises(EnvelopeError):
            canonical_json(value)
        return

    assert canonical_json(value) == expected


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_canonical_json_writes_any_float_as_repr_does(number: float) -> None:
    """orjson and repr() differ below 1e-4; the written float never does."""
    assert canonical_json([number]) == f"[{number!r}]".encode()


@pytest.mark.parametrize(
    "value",
    [{"b": {10: "x", 9: "y"}}, {True: 1, False: 2}, {None: 1}, {1.5: [0.5]}],
)
def test_canonical_json_writes_keys_that_are_not_text_as_before(
    value: dict[Any, Any],
) -> None:
    """Numbers, booleans and null as keys take the json module's path."""
    assert canonical_json(value) == reference(value)


def test_canonical_json_still_rejects_what_the_json_module_rejects() -> None:
    """NaN, a lone surrogate and a non-JSON type are refused as before."""
    with pytest.raises(EnvelopeError):
        canonical_json({"a": [math.nan]})
    with pytest.raises(EnvelopeError):
        canonical_json({"a": "\ud800"})
    with pytest.raises(TypeError):
        canonical_json({"a": {1, 2}})


@given(payloads)
def test_to_bytes_is_the_canonical_form_of_the_dumped_envelope(
    payload: dict[str, Any],
) -> None:
    """The spliced envelope bytes equal the whole-document encoding."""
    try:
        reference(payload)
    except ValueError:
        return
    made = make_envelope(
        entity=Entity.PRODUCT,
        entity_id="p-1",
        masked_payload=payload,
        event_id="evt-1",
        occurred_at=datetime(2025, 9, 1, 12, 30, 1, 5, tzinfo=UTC),
        source="src",
        mask_key_id="k1",
    )

    assert made.to_bytes() == reference(made.model_dump(mode="json"))


def test_to_bytes_keeps_the_models_form_of_a_datetime_in_the_payload() -> None:
    """A payload that is not plain JSON takes the model's own serialisation."""
    moment = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    made = make_envelope(
        entity=Entity.PRODUCT,
        entity_id="p-1",
        masked_payload={"at": moment},
        event_id="evt-1",
        occurred_at=moment,
        source="src",
        mask_key_id="k1",
    )

    assert made.to_bytes() == reference(made.model_dump(mode="json"))


@given(payloads, st.booleans())
def test_decoded_payload_bytes_are_canonical(
    payload: dict[str, Any], ascii_only: bool
) -> None:
    """Whatever the producer's spacing and escapes, the payload's bytes are the
    canonical form of what the json module reads."""
    try:
        reference(payload)
    except ValueError:
        return
    data = wrapped(json.dumps(payload, ensure_ascii=ascii_only))

    envelope, payload_bytes = decode_with_payload(data)

    assert payload_bytes == reference(json.loads(data)["payload"])
    assert typed(envelope.payload) == typed(json.loads(data)["payload"])


@given(number_texts)
def test_a_number_decodes_as_the_json_module_reads_it(number: str) -> None:
    """Wide integers, tiny and huge floats: same value, same bytes, or the same
    refusal for a number that overflows to infinity."""
    data = wrapped(f'{{"n":{number},"store_id":"store-001"}}')
    value = json.loads(number)
    if math.isinf(value):
        with pytest.raises(EnvelopeError, match="serialised canonically"):
            decode_with_payload(data)
        return

    envelope, payload_bytes = decode_with_payload(data)

    assert typed(envelope.payload["n"]) == typed(value)
    assert payload_bytes == reference({"n": value, "store_id": "store-001"})


def reference_decode(data: bytes) -> tuple[Any, bytes]:
    """The envelope and payload bytes through the json module alone."""
    envelope = events._validate(events.upcast(events._load(data)))

    return envelope, reference(envelope.payload)


@given(
    st.binary(max_size=64)
    | json_values.map(lambda value: json.dumps(value).encode())
    | st.builds(
        lambda key, value: wrapped(json.dumps({"store_id": "store-001", key: value})),
        st.text(max_size=3),
        json_values,
    )
)
def test_the_fast_decoder_returns_only_what_the_json_module_returns(
    data: bytes,
) -> None:
    """Where the orjson path decodes, the json-module path decodes the same
    envelope and payload bytes; where that refuses, the orjson path steps aside."""
    fast = events._decode_plain(data)
    try:
        expected = reference_decode(data)
    except EnvelopeError:
        assert fast is None
        return

    if fast is not None:
        assert typed(fast[0].model_dump()) == typed(expected[0].model_dump())
        assert fast[1] == expected[1]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"a":1}\x00', "not JSON"),
        (b"\xef\xbb\xbf{}", "not JSON"),
        (b'{"a":NaN}', "NaN"),
        (b'{"a":"\\ud800"}', "lone surrogate"),
        (b"[1]", "object"),
        (b'{"a":' * 300 + b"1" + b"}" * 300, "schema_version"),
        (b'{"schema_version":true}', "whole number"),
        (b'{"schema_version":100000000000000000000}', "newer"),
    ],
)
def test_decode_gives_the_json_modules_reasons(data: bytes, reason: str) -> None:
    """Refusals keep the reasons the json-module path gives them."""
    with pytest.raises(EnvelopeError, match=reason):
        decode_envelope(data)
