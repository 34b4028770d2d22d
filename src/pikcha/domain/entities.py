"""The shop's records, in exactly the JSON shape of its source files.

The models check the *shape*: keys, types and parsable dates. Values that the
shop's data is known to get wrong (nulls, empty strings, future dates, negative
prices, broken totals) pass the shape and are judged by the cleaning rules of
:mod:`pikcha.domain.cleaning`, so that dirty records still reach the raw layer
and are rejected there with the rule's name. :func:`parse_record` raises a
:class:`RecordError` naming the record, the field and the problem.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, TypeAlias

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)
from pydantic import ValidationError as PydanticValidationError

from pikcha.domain.errors import RecordError

# Strict: a string or a boolean is not a number; an integer is.
Number: TypeAlias = StrictFloat


def _text_only(value: Any) -> Any:
    if not isinstance(value, (str, date)):
        raise ValueError("expected a date as text, e.g. 2025-08-29")

    return value


# Dates are written as ISO text; a bare number is not a date.
Day: TypeAlias = Annotated[date, BeforeValidator(_text_only)]
Moment: TypeAlias = Annotated[datetime, BeforeValidator(_text_only)]


class Entity(enum.StrEnum):
    """The four kinds of record; each is a stream and a family of tables."""

    STORE = "store"
    PRODUCT = "product"
    CUSTOMER = "customer"
    PURCHASE = "purchase"

    @property
    def directory(self) -> str:
        """The folder of the source layout, ``DIR/<entity>s/``."""
        return f"{self.value}s"

    @property
    def id_field(self) -> str:
        return _ID_FIELDS[self]


_ID_FIELDS = {
    Entity.STORE: "store_id",
    Entity.PRODUCT: "id",
    Entity.CUSTOMER: "customer_id",
    Entity.PURCHASE: "purchase_id",
}


class _Shape(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Coordinates(_Shape):
    latitude: Number | None = None
    longitude: Number | None = None


class Address(_Shape):
    country: StrictStr | None = None
    city: StrictStr | None = None
    street: StrictStr | None = None
    house: StrictStr | None = None
    apartment: StrictStr | None = None
    postal_code: StrictStr | None = None
    coordinates: Coordinates | None = None


class Manager(_Shape):
    name: StrictStr | None = None
    phone: StrictStr | None = None
    email: StrictStr | None = None


class OpeningHours(_Shape):
    mon_fri: StrictStr | None = None
    sat: StrictStr | None = None
    sun: StrictStr | None = None


class Store(_Shape):
    store_id: StrictStr
    store_name: StrictStr | None = None
    store_network: StrictStr | None = None
    store_type_description: StrictStr | None = None
    type: StrictStr | None = None
    categories: list[StrictStr | None] = []
    manager: Manager | None = None
    location: Address | None = None
    opening_hours: OpeningHours | None = None
    accepts_online_orders: StrictBool | None = None
    delivery_available: StrictBool | None = None
    warehouse_connected: StrictBool | None = None
    last_inventory_date: Day | None = None


class Kbju(_Shape):
    calories: Number | None = None
    protein: Number | None = None
    fat: Number | None = None
    carbohydrates: Number | None = None


class Manufacturer(_Shape):
    name: StrictStr | None = None
    country: StrictStr | None = None
    website: StrictStr | None = None
    inn: StrictStr | None = None


class Product(_Shape):
    id: StrictStr
    name: StrictStr | None = None
    group: StrictStr | None = None
    description: StrictStr | None = None
    kbju: Kbju | None = None
    price: Number | None = None
    unit: StrictStr | None = None
    origin_country: StrictStr | None = None
    expiry_days: StrictInt | None = None
    is_organic: StrictBool | None = None
    barcode: StrictStr | None = None
    manufacturer: Manufacturer | None = None


class Preferences(_Shape):
    preferred_language: StrictStr | None = None
    preferred_payment_method: StrictStr | None = None
    receive_promotions: StrictBool | None = None


class Customer(_Shape):
    customer_id: StrictStr
    first_name: StrictStr | None = None
    last_name: StrictStr | None = None
    email: StrictStr | None = None
    phone: StrictStr | None = None
    birth_date: Day | None = None
    gender: StrictStr | None = None
    registration_date: Moment | None = None
    is_loyalty_member: StrictBool | None = None
    loyalty_card_number: StrictStr | None = None
    purchase_location: Address | None = None
    delivery_address: Address | None = None
    preferences: Preferences | None = None


class CustomerRef(_Shape):
    customer_id: StrictStr
    first_name: StrictStr | None = None
    last_name: StrictStr | None = None


class StoreRef(_Shape):
    store_id: StrictStr
    store_name: StrictStr | None = None
    store_network: StrictStr | None = None
    location: Address | None = None


class PurchaseItem(_Shape):
    product_id: StrictStr
    name: StrictStr | None = None
    category: StrictStr | None = None
    quantity: Number | None = None
    unit: StrictStr | None = None
    price_per_unit: Number | None = None
    total_price: Number | None = None
    kbju: Kbju | None = None
    manufacturer: Manufacturer | None = None


class Purchase(_Shape):
    purchase_id: StrictStr
    customer: CustomerRef
    store: StoreRef
    items: list[PurchaseItem]
    total_amount: Number | None = None
    payment_method: StrictStr | None = None
    is_delivery: StrictBool | None = None
    delivery_address: Address | None = None
    purchase_datetime: Moment | None = None


Record: TypeAlias = Store | Product | Customer | Purchase

MODELS: Mapping[Entity, type[Record]] = {
    Entity.STORE: Store,
    Entity.PRODUCT: Product,
    Entity.CUSTOMER: Customer,
    Entity.PURCHASE: Purchase,
}


def record_id(entity: Entity, data: Mapping[str, Any]) -> str | None:
    """The record's own id as written in the source, or ``None`` when absent."""
    value = data.get(entity.id_field)

    return value if isinstance(value, str) else None


def parse_record(entity: Entity, data: Any, source: str | None = None) -> Record:
    """Check a decoded JSON value against the entity's shape.

    ``source`` names where the record came from (a file, a stream position);
    when missing, the record's id names it.
    """
    if not isinstance(data, Mapping):
        raise RecordError(
            source or _describe(entity, data),
            "<record>",
            f"expected a JSON object, got {_kind(data)}",
        )
    try:
        return MODELS[entity].model_validate(data)
    except PydanticValidationError as exc:
        name = source or _describe(entity, data)
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "<record>"
        problem = first["msg"][:1].lower() + first["msg"][1:]
        if first["type"] == "missing":
            problem = "is missing"
        raise RecordError(name, field, problem) from None


def _describe(entity: Entity, data: Any) -> str:
    rid = record_id(entity, data) if isinstance(data, Mapping) else None

    return (
        f"{entity.value} {rid!r}" if rid is not None else f"{entity.value} without id"
    )


def _kind(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}

    return names.get(type(value), "a number")
