"""Cleaning rules: from a record of the source shape to a clean, typed row.

Each rule has a stable name; a record that breaks one is rejected with that
name, the field and the problem. Text that the shop compares (names, cities,
categories, payment methods) is trimmed and lower-cased. Money is kept exact
as :class:`~decimal.Decimal` kopecks; a purchase's total must equal the sum of
its lines within one kopeck. ``now`` is given by the caller: the domain has no
clock of its own.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, TypeAlias

from pikcha.domain.categories import category_code
from pikcha.domain.entities import (
    Customer,
    Entity,
    Product,
    Purchase,
    PurchaseItem,
    Record,
    Store,
    parse_record,
)
from pikcha.domain.errors import RecordError

KOPECK = Decimal("0.01")
QUANTUM_QTY = Decimal("0.001")


class Rule(enum.StrEnum):
    """The stable names of the cleaning rules."""

    ID_PRESENT = "id_present"
    REQUIRED_PRESENT = "required_present"
    DATE_NOT_FUTURE = "date_not_future"
    NOT_NEGATIVE = "not_negative"
    TOTAL_MATCHES_LINES = "total_matches_lines"
    AMOUNT_IN_RANGE = "amount_in_range"


MAX_AMOUNT = 10**12
"""Money and quantities above this (or not finite) are rejected, not rounded."""


@dataclass(frozen=True, slots=True)
class Rejection:
    rule: Rule
    field: str
    problem: str

    def error(self, record: str) -> RecordError:
        return RecordError(record, self.field, f"{self.problem} (rule {self.rule})")


@dataclass(frozen=True, slots=True)
class CleanStore:
    store_id: str
    store_name: str
    store_network: str
    store_type: str
    city: str
    accepts_online_orders: bool
    delivery_available: bool


@dataclass(frozen=True, slots=True)
class CleanProduct:
    product_id: str
    name: str
    category: str
    category_code: str | None
    price: Decimal
    is_organic: bool


@dataclass(frozen=True, slots=True)
class CleanCustomer:
    customer_id: str
    gender: str
    birth_date: date | None
    registration_date: datetime
    is_loyalty_member: bool
    city: str
    email_token: str | None
    phone_token: str | None
    loyalty_card_token: str | None


@dataclass(frozen=True, slots=True)
class CleanItem:
    purchase_id: str
    line_no: int
    product_id: str
    name: str
    category: str
    category_code: str | None
    quantity: Decimal
    price_per_unit: Decimal
    total_price: Decimal


@dataclass(frozen=True, slots=True)
class CleanPurchase:
    purchase_id: str
    customer_id: str
    store_id: str
    store_city: str
    purchase_datetime: datetime
    total_amount: Decimal
    payment_method: str
    is_delivery: bool
    line_count: int
    quantity_total: Decimal
    items: tuple[CleanItem, ...]


CleanRow: TypeAlias = CleanStore | CleanProduct | CleanCustomer | CleanPurchase


def text(value: str | None) -> str:
    """Trimmed and lower-cased, the shop's rule for compared text."""
    return (value or "").strip().lower()


def money(value: float) -> Decimal:
    """The float's shortest decimal form, rounded half-even to kopecks."""
    return _quantized(value, 100, KOPECK)


def quantity(value: float) -> Decimal:
    """The float's shortest decimal form, rounded half-even to thousandths."""
    return _quantized(value, 1000, QUANTUM_QTY)


_FAST_LIMIT = 1e9


def _quantized(value: float, scale: int, quantum: Decimal) -> Decimal:
    # Below the limit, value * scale lies within 1e-3 of the shortest decimal
    # form times scale. When it is also more than 0.4 from a half, rounding it
    # to an integer rounds that decimal form the same way, with no tie to break.
    if 0.0 <= value < _FAST_LIMIT:
        scaled = value * scale
        whole = round(scaled)
        if -0.4 < scaled - whole < 0.4:
            return Decimal(whole) * quantum
    # ``+ 0`` turns a negative zero into zero.
    return Decimal(repr(value + 0.0)).quantize(quantum, rounding=ROUND_HALF_EVEN)


class _Reject(Exception):
    def __init__(self, rejection: Rejection) -> None:
        self.rejection = rejection


def _fail(rule: Rule, field: str, problem: str) -> _Reject:
    return _Reject(Rejection(rule, field, problem))


def _id(value: str | None, field: str) -> str:
    if value is None or not value.strip():
        raise _fail(Rule.ID_PRESENT, field, "is empty")

    return value.strip()


def _required_text(value: str | None, field: str) -> str:
    normal = text(value)
    if not normal:
        raise _fail(Rule.REQUIRED_PRESENT, field, "is null or empty")

    return normal


def _required(value: Any, field: str) -> Any:
    if value is None:
        raise _fail(Rule.REQUIRED_PRESENT, field, "is null")

    return value


def _not_future(value: datetime | date | None, field: str, now: datetime) -> None:
    if value is None:
        return
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.replace(tzinfo=None)
    limit: datetime | date = now.date() if type(value) is date else now
    if value > limit:
        raise _fail(
            Rule.DATE_NOT_FUTURE, field, f"{value.isoformat()} is in the future"
        )


def _not_negative(value: float, field: str) -> None:
    if not math.isfinite(value) or value > MAX_AMOUNT:
        raise _fail(
            Rule.AMOUNT_IN_RANGE,
            field,
            f"{value!r} is not a finite amount up to {MAX_AMOUNT}",
        )
    if value < 0:
        raise _fail(Rule.NOT_NEGATIVE, field, f"{value!r} is negative")


def _code(category: str) -> str | None:
    code = category_code(category)

    return code.value if code else None


def _naive(value: datetime, now: datetime) -> datetime:
    # The shop records local wall-clock time; an offset, if any, is dropped.
    return value.replace(tzinfo=None) if value.tzinfo else value


def clean_store(record: Store, now: datetime) -> CleanStore:
    location = record.location
    return CleanStore(
        store_id=_id(record.store_id, "store_id"),
        store_name=_required_text(record.store_name, "store_name"),
        store_network=text(record.store_network),
        store_type=text(record.type),
        city=_required_text(location.city if location else None, "location.city"),
        accepts_online_orders=bool(record.accepts_online_orders),
        delivery_available=bool(record.delivery_available),
    )


def clean_product(record: Product, now: datetime) -> CleanProduct:
    product_id = _id(record.id, "id")
    name = _required_text(record.name, "name")
    category = _required_text(record.group, "group")
    price = _required(record.price, "price")
    _not_negative(price, "price")

    return CleanProduct(
        product_id=product_id,
        name=name,
        category=category,
        category_code=_code(category),
        price=money(price),
        is_organic=bool(record.is_organic),
    )


def clean_customer(record: Customer, now: datetime) -> CleanCustomer:
    customer_id = _id(record.customer_id, "customer_id")
    registered = _required(record.registration_date, "registration_date")
    _not_future(record.birth_date, "birth_date", now)
    _not_future(registered, "registration_date", now)
    location = record.purchase_location

    return CleanCustomer(
        customer_id=customer_id,
        gender=text(record.gender),
        birth_date=record.birth_date,
        registration_date=_naive(registered, now),
        is_loyalty_member=bool(record.is_loyalty_member),
        city=text(location.city if location else None),
        email_token=record.email,
        phone_token=record.phone,
        loyalty_card_token=record.loyalty_card_number,
    )


def clean_purchase(record: Purchase, now: datetime) -> CleanPurchase:
    purchase_id = _id(record.purchase_id, "purchase_id")
    customer_id = _id(record.customer.customer_id, "customer.customer_id")
    store_id = _id(record.store.store_id, "store.store_id")
    store_city = _required_text(
        record.store.location.city if record.store.location else None,
        "store.location.city",
    )
    when = _required(record.purchase_datetime, "purchase_datetime")
    _not_future(when, "purchase_datetime", now)
    payment = _required_text(record.payment_method, "payment_method")
    total = _required(record.total_amount, "total_amount")
    _not_negative(total, "total_amount")
    if not record.items:
        raise _fail(Rule.REQUIRED_PRESENT, "items", "has no lines")

    items = []
    lines_sum = Decimal(0)
    for number, item in enumerate(record.items):
        try:
            line, exact_total = _clean_item(purchase_id, number, item)
        except _Reject as reject:
            # Field names are joined only for the line that fails: formatting
            # them for every line costs more than the checks themselves.
            where = f"items.{number}.{reject.rejection.field}"
            raise _Reject(replace(reject.rejection, field=where)) from None
        lines_sum += exact_total
        items.append(line)
    if abs(Decimal(repr(total)) - lines_sum) > KOPECK:
        raise _fail(
            Rule.TOTAL_MATCHES_LINES,
            "total_amount",
            f"{total!r} differs from the sum of its lines {lines_sum}",
        )

    return CleanPurchase(
        purchase_id=purchase_id,
        customer_id=customer_id,
        store_id=store_id,
        store_city=store_city,
        purchase_datetime=_naive(when, now),
        total_amount=money(total),
        payment_method=payment,
        is_delivery=bool(record.is_delivery),
        line_count=len(items),
        quantity_total=sum((item.quantity for item in items), Decimal(0)),
        items=tuple(items),
    )


def _clean_item(
    purchase_id: str, number: int, item: PurchaseItem
) -> tuple[CleanItem, Decimal]:
    """A purchase line and its exact total; a rejection names its field only."""
    qty = _required(item.quantity, "quantity")
    unit_price = _required(item.price_per_unit, "price_per_unit")
    line_total = _required(item.total_price, "total_price")
    _not_negative(qty, "quantity")
    _not_negative(unit_price, "price_per_unit")
    _not_negative(line_total, "total_price")
    category = _required_text(item.category, "category")
    exact_total = Decimal(repr(line_total))
    line = CleanItem(
        purchase_id=purchase_id,
        line_no=number,
        product_id=_id(item.product_id, "product_id"),
        name=text(item.name),
        category=category,
        category_code=_code(category),
        quantity=quantity(qty),
        price_per_unit=money(unit_price),
        total_price=money(line_total),
    )

    return line, exact_total


_CLEANERS: Mapping[Entity, Any] = {
    Entity.STORE: clean_store,
    Entity.PRODUCT: clean_product,
    Entity.CUSTOMER: clean_customer,
    Entity.PURCHASE: clean_purchase,
}


def clean(entity: Entity, record: Record, now: datetime) -> CleanRow | Rejection:
    """The clean row of a parsed record, or the first rule it breaks."""
    if now.tzinfo is not None:
        now = now.replace(tzinfo=None)
    try:
        row: CleanRow = _CLEANERS[entity](record, now)
    except _Reject as reject:
        return reject.rejection

    return row


def validate_record(
    entity: Entity, data: Any, now: datetime, source: str | None = None
) -> CleanRow:
    """Shape and rules together: the clean row, or a :class:`RecordError`."""
    record = parse_record(entity, data, source)
    outcome = clean(entity, record, now)
    if isinstance(outcome, Rejection):
        name = source or f"{entity.value} {getattr(record, entity.id_field)!r}"
        raise outcome.error(name)

    return outcome
