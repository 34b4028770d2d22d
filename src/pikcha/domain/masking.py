"""Pseudonymisation of personal data before any event exists.

A value is normalised (emails trimmed, NFKC-normalised and lower-cased; phones
parsed to E.164; card numbers trimmed and upper-cased) and replaced by a keyed
HMAC-SHA256 token. The same value under the same key always gives the same
token, so tokens still join; without the key they cannot be reversed. A value
that cannot be normalised becomes ``None`` and its path is flagged: the raw
value is never emitted.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import unicodedata
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

from pikcha.domain.entities import Entity
from pikcha.domain.errors import ConfigurationError

FLAGS_FIELD = "masking_flags"


class Kind(enum.StrEnum):
    """What a masked value is; part of the token so kinds never collide."""

    EMAIL = "email"
    PHONE = "phone"
    CARD = "card"


class Action(enum.StrEnum):
    MASK = "mask"
    KEEP = "keep"
    DROP = "drop"


@dataclass(frozen=True)
class FieldRule:
    action: Action
    kind: Kind | None = None


@dataclass(frozen=True)
class MaskingPolicy:
    """Per entity, what happens to each dotted field path; unnamed fields are kept."""

    rules: Mapping[Entity, Mapping[str, FieldRule]]

    @classmethod
    def default(cls) -> MaskingPolicy:
        email = FieldRule(Action.MASK, Kind.EMAIL)
        phone = FieldRule(Action.MASK, Kind.PHONE)
        card = FieldRule(Action.MASK, Kind.CARD)

        return cls(
            {
                Entity.STORE: {"manager.email": email, "manager.phone": phone},
                Entity.CUSTOMER: {
                    "email": email,
                    "phone": phone,
                    "loyalty_card_number": card,
                },
                Entity.PRODUCT: {},
                Entity.PURCHASE: {},
            }
        )

    def for_entity(self, entity: Entity) -> Mapping[str, FieldRule]:
        return self.rules.get(entity, {})


class Unnormalisable(ValueError):
    """A value that cannot be brought to its normal form."""


def normalise_email(value: str) -> str:
    text = unicodedata.normalize("NFKC", value).strip().lower()
    local, at, domain = text.partition("@")
    if (
        not at
        or not local
        or not domain
        or "@" in domain
        or any(c.isspace() for c in text)
    ):
        raise Unnormalisable("not an email address")

    return text


def normalise_phone(value: str, region: str = "RU") -> str:
    text = unicodedata.normalize("NFKC", value).strip()
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise Unnormalisable("not a phone number") from exc
    if not phonenumbers.is_possible_number(number):
        raise Unnormalisable("not a possible phone number")

    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_card(value: str) -> str:
    text = unicodedata.normalize("NFKC", value).strip().upper()
    if not text:
        raise Unnormalisable("empty card number")

    return text


@dataclass(frozen=True)
class Masker:
    """Turns personal values into tokens with one key, named by ``key_id``."""

    key: bytes = field(repr=False)
    key_id: str
    region: str = "RU"
    policy: MaskingPolicy = field(default_factory=MaskingPolicy.default)

    def __post_init__(self) -> None:
        if len(self.key) < 16:
            raise ConfigurationError(
                "the masking key is shorter than 16 bytes; "
                "set PIKCHA_MASK_KEY to a long random secret"
            )
        if not self.key_id:
            raise ConfigurationError(
                "the masking key id is empty; set PIKCHA_MASK_KEY_ID"
            )

    def normalise(self, kind: Kind, value: str) -> str:
        if kind is Kind.EMAIL:
            return normalise_email(value)
        if kind is Kind.PHONE:
            return normalise_phone(value, self.region)

        return normalise_card(value)

    def token(self, kind: Kind, value: str) -> str:
        """The token of a raw value; raises :class:`Unnormalisable`."""
        normal = self.normalise(kind, value)
        digest = hmac.new(self.key, f"{kind}:{normal}".encode(), hashlib.sha256)

        return f"{kind}_{digest.hexdigest()}"

    def mask(self, entity: Entity, payload: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of the payload with the policy applied.

        Paths that could not be normalised are listed, sorted, under
        ``masking_flags`` (present only when some value was flagged).
        """
        out = dict(payload)
        flags: list[str] = []
        for path, rule in self.policy.for_entity(entity).items():
            if rule.action is Action.KEEP:
                continue
            parent, leaf = _parent(out, path)
            if parent is None or leaf not in parent:
                continue
            if rule.action is Action.DROP:
                del parent[leaf]
                continue
            raw = parent[leaf]
            if raw is None:
                continue
            assert rule.kind is not None
            try:
                if not isinstance(raw, str):
                    raise Unnormalisable("not a string")
                parent[leaf] = self.token(rule.kind, raw)
            except Unnormalisable:
                parent[leaf] = None
                flags.append(path)
        if flags:
            out[FLAGS_FIELD] = sorted(flags)

        return out


def _parent(
    doc: MutableMapping[str, Any], path: str
) -> tuple[MutableMapping[str, Any] | None, str]:
    # Copies each mapping on the way down, so the caller's payload is untouched.
    *heads, leaf = path.split(".")
    node: Any = doc
    for head in heads:
        child = node.get(head)
        if not isinstance(child, Mapping):
            return None, leaf
        node[head] = dict(child)
        node = node[head]

    return node, leaf
