"""Pseudonymisation of emails, phones and loyalty cards."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from pikcha.domain.entities import Entity
from pikcha.domain.errors import ConfigurationError
from pikcha.domain.events import canonical_json
from pikcha.domain.masking import (
    FLAGS_FIELD,
    Action,
    FieldRule,
    Kind,
    Masker,
    MaskingPolicy,
    Unnormalisable,
)
from tests.unit.domain.records import customer, store

KEY = b"0123456789abcdef-test-key"
KEYS = st.binary(min_size=16, max_size=64)

emails = st.builds(
    "{}@{}".format,
    st.from_regex(r"[a-z][a-z0-9._-]{0,15}", fullmatch=True),
    st.from_regex(r"[a-z]{2,10}(\.[a-z]{2,6}){1,2}", fullmatch=True),
)
operator_codes = st.integers(0, 99).map(lambda n: f"9{n:02d}")
subscriber_numbers = st.integers(0, 9_999_999).map(lambda n: f"{n:07d}")
phone_parts = st.tuples(operator_codes, subscriber_numbers)
cards = st.from_regex(r"[0-9A-F]{10}", fullmatch=True).map("LOYAL-{}".format)
padding = st.text(alphabet=" \t\n\u00a0\u3000", max_size=3)


def spellings(code: str, rest: str) -> list[str]:
    """The ways the shop's sources write one Russian mobile number."""
    a, b, c = rest[:3], rest[3:5], rest[5:]

    return [
        f"+7 ({code}) {a}-{b}-{c}",
        f"8 {code} {a} {b} {c}",
        f"+7{code}{rest}",
        f"8({code}){a}-{b}-{c}",
    ]


def masker(key: bytes = KEY, key_id: str = "k1", **kwargs: Any) -> Masker:
    return Masker(key=key, key_id=key_id, **kwargs)


def fullwidth(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


def with_case(text: str, upper: list[bool]) -> str:
    flags = upper + [False] * len(text)

    return "".join(
        ch.upper() if up else ch for ch, up in zip(text, flags, strict=False)
    )


def is_unnormalisable(kind: Kind, value: str) -> bool:
    try:
        masker().normalise(kind, value)
    except Unnormalisable:
        return True

    return False


def canonical_text(payload: dict[str, Any]) -> str:
    return canonical_json(payload).decode("utf-8")


@given(key=KEYS, email=emails)
def test_token_is_deterministic_for_one_key(key: bytes, email: str) -> None:
    """Two maskers with the same key give the same token for the same value."""
    assert masker(key).token(Kind.EMAIL, email) == masker(key).token(Kind.EMAIL, email)


@given(first=KEYS, second=KEYS, email=emails)
def test_different_keys_give_different_tokens(
    first: bytes, second: bytes, email: str
) -> None:
    """The same value under two different keys gives two different tokens."""
    assume(first != second)

    assert masker(first).token(Kind.EMAIL, email) != masker(second).token(
        Kind.EMAIL, email
    )


@given(email=emails, parts=phone_parts, card=cards, spelling=st.integers(0, 3))
def test_masked_customer_holds_no_personal_value_or_its_digits(
    email: str, parts: tuple[str, str], card: str, spelling: int
) -> None:
    """Neither the values nor the digit runs of a phone or card reach the output."""
    code, rest = parts
    phone = spellings(code, rest)[spelling]
    payload = {
        "customer_id": "cus-1",
        "email": email,
        "phone": phone,
        "loyalty_card_number": card,
    }

    text = canonical_text(masker().mask(Entity.CUSTOMER, payload)).lower()

    assert email.lower() not in text
    assert phone.lower() not in text
    assert card.lower() not in text
    assert card.removeprefix("LOYAL-").lower() not in text
    assert code + rest not in text


@given(parts=phone_parts)
def test_every_spelling_of_a_phone_gives_one_token(parts: tuple[str, str]) -> None:
    """The four spellings of one Russian mobile number share a token."""
    tokens = {masker().token(Kind.PHONE, phone) for phone in spellings(*parts)}

    assert len(tokens) == 1


@given(parts=phone_parts)
def test_a_phone_token_is_the_token_of_its_e164_form(parts: tuple[str, str]) -> None:
    """A phone is tokenised as +7 followed by its ten national digits."""
    code, rest = parts
    m = masker()

    assert m.token(Kind.PHONE, f"8 {code} {rest}") == m.token(
        Kind.PHONE, f"+7{code}{rest}"
    )
    assert m.normalise(Kind.PHONE, f"8 {code} {rest}") == f"+7{code}{rest}"


@given(
    email=emails,
    upper=st.lists(st.booleans(), max_size=40),
    widen=st.booleans(),
    before=padding,
    after=padding,
)
def test_case_space_and_width_variants_of_an_email_give_one_token(
    email: str, upper: list[bool], widen: bool, before: str, after: str
) -> None:
    """Case, surrounding white space and full-width forms do not change the token."""
    variant = with_case(email, upper)
    if widen:
        variant = fullwidth(variant)
    variant = before + variant + after

    assert masker().token(Kind.EMAIL, variant) == masker().token(Kind.EMAIL, email)


@given(card=cards, before=padding, after=padding)
def test_a_card_in_lower_case_with_spaces_gives_the_card_token(
    card: str, before: str, after: str
) -> None:
    """Card numbers are trimmed and upper-cased before tokenising."""
    variant = before + card.lower() + after

    assert masker().token(Kind.CARD, variant) == masker().token(Kind.CARD, card)


def test_kinds_never_share_a_token() -> None:
    """One text masked as an email and as a card gives two tokens."""
    m = masker()

    assert m.token(Kind.EMAIL, "A@B.RU") != m.token(Kind.CARD, "a@b.ru")


@pytest.mark.parametrize(
    ("field", "kind", "raw"),
    [
        ("email", Kind.EMAIL, "not-an-email"),
        ("email", Kind.EMAIL, "12"),
        ("email", Kind.EMAIL, ""),
        ("email", Kind.EMAIL, "anna @example.org"),
        ("phone", Kind.PHONE, "not-an-email"),
        ("phone", Kind.PHONE, "12"),
        ("phone", Kind.PHONE, ""),
        ("phone", Kind.PHONE, "позвоните менеджеру"),
        ("loyalty_card_number", Kind.CARD, ""),
        ("loyalty_card_number", Kind.CARD, "   "),
    ],
)
def test_an_unnormalisable_value_is_nulled_flagged_and_not_emitted(
    field: str, kind: Kind, raw: str
) -> None:
    """A value with no normal form becomes None, is flagged and appears nowhere."""
    payload = {"customer_id": "cus-7", field: raw}

    masked = masker().mask(Entity.CUSTOMER, payload)
    text = canonical_text(masked)

    assert masked[field] is None
    assert masked[FLAGS_FIELD] == [field]
    assert json.dumps(raw, ensure_ascii=False) not in text
    assert raw.strip() == "" or raw not in text


def test_a_phone_that_is_not_a_string_is_nulled_and_flagged() -> None:
    """A phone written as a JSON number is not tokenised and its digits vanish."""
    payload = {"customer_id": "cus-7", "phone": 89123456789}

    masked = masker().mask(Entity.CUSTOMER, payload)

    assert masked["phone"] is None
    assert masked[FLAGS_FIELD] == ["phone"]
    assert "9123456789" not in canonical_text(masked)


@given(
    field_kind=st.sampled_from(
        [
            ("email", Kind.EMAIL),
            ("phone", Kind.PHONE),
            ("loyalty_card_number", Kind.CARD),
        ]
    ),
    raw=st.text(max_size=30) | st.text(alphabet=" \t\n\u3000", max_size=5),
)
@example(field_kind=("email", Kind.EMAIL), raw="garbage")
@example(field_kind=("phone", Kind.PHONE), raw="garbage")
def test_any_unnormalisable_value_leaves_only_a_null_and_a_flag(
    field_kind: tuple[str, Kind], raw: str
) -> None:
    """The canonical form of the output equals that of the payload with a null."""
    field, kind = field_kind
    assume(is_unnormalisable(kind, raw))
    payload = {"customer_id": "cus-7", "gender": "female", field: raw}

    masked = masker().mask(Entity.CUSTOMER, payload)

    expected = {**payload, field: None, FLAGS_FIELD: [field]}
    assert canonical_json(masked) == canonical_json(expected)


def test_flags_list_every_unnormalisable_path_sorted() -> None:
    """Several failed fields are all flagged, in sorted order."""
    payload = {"customer_id": "cus-7", "phone": "12", "email": "nope"}

    masked = masker().mask(Entity.CUSTOMER, payload)

    assert masked[FLAGS_FIELD] == ["email", "phone"]


def test_no_flags_field_when_every_value_normalises() -> None:
    """A payload whose values all normalise carries no masking_flags."""
    assert FLAGS_FIELD not in masker().mask(Entity.CUSTOMER, customer())


def test_a_null_personal_value_stays_null_without_a_flag() -> None:
    """A missing value is not a failure to normalise."""
    masked = masker().mask(Entity.CUSTOMER, {"customer_id": "c", "email": None})

    assert masked["email"] is None
    assert FLAGS_FIELD not in masked


def test_a_kept_field_passes_through_unchanged() -> None:
    """A field whose rule is keep keeps its raw value."""
    policy = MaskingPolicy({Entity.CUSTOMER: {"email": FieldRule(Action.KEEP)}})
    payload = customer()

    masked = masker(policy=policy).mask(Entity.CUSTOMER, payload)

    assert masked["email"] == "Anna.S@Example.com"


def test_a_dropped_field_is_removed() -> None:
    """A field whose rule is drop is absent from the output."""
    policy = MaskingPolicy({Entity.CUSTOMER: {"phone": FieldRule(Action.DROP)}})

    masked = masker(policy=policy).mask(Entity.CUSTOMER, customer())

    assert "phone" not in masked


def test_a_dropped_nested_field_leaves_its_siblings() -> None:
    """Dropping manager.phone keeps the manager's name and email."""
    policy = MaskingPolicy({Entity.STORE: {"manager.phone": FieldRule(Action.DROP)}})

    masked = masker(policy=policy).mask(Entity.STORE, store())

    assert masked["manager"] == {
        "name": "Иванова Анна Петровна",
        "email": "anna@example.org",
    }


def test_fields_the_policy_does_not_name_are_kept() -> None:
    """Everything but the personal fields is copied as it was."""
    payload = customer()

    masked = masker().mask(Entity.CUSTOMER, payload)

    personal = {"email", "phone", "loyalty_card_number"}
    assert {k: v for k, v in masked.items() if k not in personal} == {
        k: v for k, v in payload.items() if k not in personal
    }


def test_masking_a_customer_does_not_change_the_callers_payload() -> None:
    """The payload handed in is equal to its copy after masking."""
    payload = customer()
    before = copy.deepcopy(payload)

    masker().mask(Entity.CUSTOMER, payload)

    assert payload == before


def test_masking_a_store_does_not_change_the_callers_manager() -> None:
    """The nested manager mapping handed in keeps its raw email and phone."""
    payload = store()
    manager = payload["manager"]
    before = copy.deepcopy(manager)

    masked = masker().mask(Entity.STORE, payload)

    assert payload["manager"] is manager
    assert manager == before
    assert masked["manager"] is not manager


def test_dropping_a_nested_field_does_not_change_the_callers_manager() -> None:
    """A drop rule removes the key from the copy only."""
    policy = MaskingPolicy({Entity.STORE: {"manager.phone": FieldRule(Action.DROP)}})
    payload = store()

    masker(policy=policy).mask(Entity.STORE, payload)

    assert payload["manager"]["phone"] == "+7 (912) 345-67-89"


def test_a_masked_store_has_tokens_for_the_managers_email_and_phone() -> None:
    """The default policy tokenises manager.email and manager.phone of a store."""
    m = masker()

    masked = m.mask(Entity.STORE, store())

    assert masked["manager"] == {
        "name": "Иванова Анна Петровна",
        "email": m.token(Kind.EMAIL, "anna@example.org"),
        "phone": m.token(Kind.PHONE, "+79123456789"),
    }


def test_a_masked_customer_has_tokens_for_email_phone_and_card() -> None:
    """The default policy tokenises a customer's email, phone and loyalty card."""
    m = masker()

    masked = m.mask(Entity.CUSTOMER, customer())

    assert masked["email"] == m.token(Kind.EMAIL, "anna.s@example.com")
    assert masked["phone"] == m.token(Kind.PHONE, "+79123456789")
    assert masked["loyalty_card_number"] == m.token(Kind.CARD, "LOYAL-B566CFC017")


def test_a_customer_and_a_manager_with_one_phone_share_a_token() -> None:
    """Tokens join across entities: the same number masks to the same token."""
    m = masker()

    assert (
        m.mask(Entity.STORE, store())["manager"]["phone"]
        == m.mask(Entity.CUSTOMER, customer())["phone"]
    )


@pytest.mark.parametrize("length", [0, 1, 15])
def test_a_key_shorter_than_16_bytes_is_a_configuration_error(length: int) -> None:
    """A short masking key is refused when the masker is made."""
    with pytest.raises(ConfigurationError, match="PIKCHA_MASK_KEY"):
        masker(key=b"k" * length)


def test_a_key_of_16_bytes_is_accepted() -> None:
    """Sixteen bytes is long enough."""
    assert masker(key=b"k" * 16).key_id == "k1"


def test_an_empty_key_id_is_a_configuration_error() -> None:
    """A masker needs the id of its key."""
    with pytest.raises(ConfigurationError, match="PIKCHA_MASK_KEY_ID"):
        masker(key_id="")


def test_the_key_does_not_appear_in_the_maskers_repr() -> None:
    """The secret key is hidden from the masker's representation."""
    assert "test-key" not in repr(masker())
