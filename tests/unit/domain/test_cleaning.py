"""The cleaning rules, each checked as a property over generated values."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from pikcha.domain.cleaning import (
    CleanProduct,
    CleanPurchase,
    CleanRow,
    Rejection,
    Rule,
    clean,
)
from pikcha.domain.entities import Entity, parse_record
from tests.unit.domain import records

NOW = datetime(2025, 10, 1, 12, 0)
KOPECK = Decimal("0.01")

Make = Callable[[], dict[str, Any]]

blanks = st.text(alphabet=" \t\n\r\u00a0\u2003\u3000", max_size=6)
padding = st.text(alphabet=" \t\n\u00a0", max_size=3)
words = st.text(
    alphabet="абвгдеёжзийклмнопрстуфхцчшщъыьэюяabcdefghijklmnopqrstuvwxyz -.,",
    min_size=1,
    max_size=30,
).filter(lambda s: s == s.strip() and s != "")
negatives = st.floats(max_value=-5e-324, allow_nan=False, allow_infinity=False)
nows = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1))
later = st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(3650))


def outcome(entity: Entity, data: dict[str, Any], now: datetime = NOW) -> Any:
    """The clean row or the rejection of a record given as source JSON."""
    return clean(entity, parse_record(entity, data), now)


def changed(record: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *heads, leaf = path.split(".")
    node: Any = record
    for head in heads:
        node = node[int(head)] if isinstance(node, list) else node[head]
    node[leaf] = value

    return record


def read(row: CleanRow, path: str) -> Any:
    value: Any = row
    for part in path.split("."):
        value = value[int(part)] if part.isdigit() else getattr(value, part)

    return value


def purchase_of_lines(line_kopecks: list[int], total_kopecks: int) -> dict[str, Any]:
    record = records.purchase()
    record["items"] = [
        records.purchase_item() | {"total_price": kopecks / 100}
        for kopecks in line_kopecks
    ]
    record["total_amount"] = total_kopecks / 100

    return record


def assert_rejected(result: Any, rule: Rule, field: str) -> None:
    assert isinstance(result, Rejection), result
    assert (result.rule, result.field) == (rule, field)


def read_source(record: dict[str, Any], path: str) -> Any:
    node: Any = record
    for part in path.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]

    return node


def clean_path(entity: Entity, path: str) -> str:
    """Where a source id ends up on the clean row."""
    return {
        "store_id": "store_id",
        "id": "product_id",
        "customer_id": "customer_id",
        "purchase_id": "purchase_id",
        "customer.customer_id": "customer_id",
        "store.store_id": "store_id",
        "items.0.product_id": "items.0.product_id",
    }[path]


ID_PATHS = [
    (Entity.STORE, records.store, "store_id"),
    (Entity.PRODUCT, records.product, "id"),
    (Entity.CUSTOMER, records.customer, "customer_id"),
    (Entity.PURCHASE, records.purchase, "purchase_id"),
    (Entity.PURCHASE, records.purchase, "customer.customer_id"),
    (Entity.PURCHASE, records.purchase, "store.store_id"),
    (Entity.PURCHASE, records.purchase, "items.0.product_id"),
]


@pytest.mark.parametrize(("entity", "make", "path"), ID_PATHS)
@given(blank=blanks)
def test_an_empty_or_blank_id_breaks_id_present(
    entity: Entity, make: Make, path: str, blank: str
) -> None:
    """An id that is empty or only white space is rejected by id_present."""
    assert_rejected(
        outcome(entity, changed(make(), path, blank)), Rule.ID_PRESENT, path
    )


@pytest.mark.parametrize(("entity", "make", "path"), ID_PATHS)
@given(before=padding, after=padding)
def test_an_id_is_trimmed(
    entity: Entity, make: Make, path: str, before: str, after: str
) -> None:
    """White space around an id is removed and the id kept."""
    original = read_source(make(), path)

    row = outcome(entity, changed(make(), path, before + original + after))

    assert read(row, clean_path(entity, path)) == original


@pytest.mark.parametrize(
    ("entity", "make", "path", "target"),
    [
        (Entity.STORE, records.store, "store_name", "store_name"),
        (Entity.STORE, records.store, "store_network", "store_network"),
        (Entity.STORE, records.store, "location.city", "city"),
        (Entity.PRODUCT, records.product, "name", "name"),
        (Entity.PRODUCT, records.product, "group", "category"),
        (Entity.CUSTOMER, records.customer, "purchase_location.city", "city"),
        (Entity.PURCHASE, records.purchase, "store.location.city", "store_city"),
        (Entity.PURCHASE, records.purchase, "payment_method", "payment_method"),
        (Entity.PURCHASE, records.purchase, "items.0.name", "items.0.name"),
        (Entity.PURCHASE, records.purchase, "items.0.category", "items.0.category"),
    ],
)
@given(core=words, upper=st.lists(st.booleans(), max_size=30), before=padding)
def test_compared_text_is_trimmed_and_lower_cased(
    entity: Entity,
    make: Make,
    path: str,
    target: str,
    core: str,
    upper: list[bool],
    before: str,
) -> None:
    """Names, cities, categories and payment methods are trimmed and lower-cased."""
    mixed = "".join(
        ch.upper() if up else ch
        for ch, up in zip(core, upper + [False] * len(core), strict=False)
    )

    row = outcome(entity, changed(make(), path, before + mixed + before[::-1]))

    assert read(row, target) == core


@pytest.mark.parametrize(
    ("entity", "make", "path", "value", "field"),
    [
        (Entity.STORE, records.store, "store_name", None, "store_name"),
        (Entity.STORE, records.store, "store_name", " ", "store_name"),
        (Entity.STORE, records.store, "location.city", None, "location.city"),
        (Entity.STORE, records.store, "location", None, "location.city"),
        (Entity.PRODUCT, records.product, "name", None, "name"),
        (Entity.PRODUCT, records.product, "group", "", "group"),
        (Entity.PRODUCT, records.product, "price", None, "price"),
        (
            Entity.CUSTOMER,
            records.customer,
            "registration_date",
            None,
            "registration_date",
        ),
        (
            Entity.PURCHASE,
            records.purchase,
            "store.location.city",
            None,
            "store.location.city",
        ),
        (
            Entity.PURCHASE,
            records.purchase,
            "purchase_datetime",
            None,
            "purchase_datetime",
        ),
        (Entity.PURCHASE, records.purchase, "payment_method", None, "payment_method"),
        (Entity.PURCHASE, records.purchase, "total_amount", None, "total_amount"),
        (Entity.PURCHASE, records.purchase, "items", [], "items"),
        (
            Entity.PURCHASE,
            records.purchase,
            "items.0.quantity",
            None,
            "items.0.quantity",
        ),
        (
            Entity.PURCHASE,
            records.purchase,
            "items.0.price_per_unit",
            None,
            "items.0.price_per_unit",
        ),
        (
            Entity.PURCHASE,
            records.purchase,
            "items.0.total_price",
            None,
            "items.0.total_price",
        ),
        (
            Entity.PURCHASE,
            records.purchase,
            "items.0.category",
            None,
            "items.0.category",
        ),
    ],
)
def test_a_required_null_breaks_required_present(
    entity: Entity, make: Make, path: str, value: Any, field: str
) -> None:
    """A required value that is null or empty is rejected by required_present."""
    result = outcome(entity, changed(make(), path, value))

    assert_rejected(result, Rule.REQUIRED_PRESENT, field)


@pytest.mark.parametrize(
    ("entity", "make", "path"),
    [
        (Entity.CUSTOMER, records.customer, "registration_date"),
        (Entity.PURCHASE, records.purchase, "purchase_datetime"),
    ],
)
@given(now=nows, ahead=later)
def test_a_time_after_now_breaks_date_not_future(
    entity: Entity, make: Make, path: str, now: datetime, ahead: timedelta
) -> None:
    """A registration or purchase time later than now is rejected."""
    record = changed(make(), path, (now + ahead).isoformat())

    assert_rejected(outcome(entity, record, now), Rule.DATE_NOT_FUTURE, path)


@pytest.mark.parametrize(
    ("entity", "make", "path"),
    [
        (Entity.CUSTOMER, records.customer, "registration_date"),
        (Entity.PURCHASE, records.purchase, "purchase_datetime"),
    ],
)
@given(now=nows)
def test_a_time_equal_to_now_is_accepted(
    entity: Entity, make: Make, path: str, now: datetime
) -> None:
    """The present moment is not in the future."""
    record = changed(make(), path, now.isoformat())
    if entity is Entity.CUSTOMER:
        record["birth_date"] = "1985-03-13"

    row = outcome(entity, record, now)

    assert not isinstance(row, Rejection), row
    assert read(row, path) == now


@given(now=nows, days=st.integers(1, 3650))
def test_a_birth_date_after_today_breaks_date_not_future(
    now: datetime, days: int
) -> None:
    """A birth date after the day of now is rejected."""
    record = records.customer()
    record["registration_date"] = now.isoformat()
    record["birth_date"] = (now.date() + timedelta(days)).isoformat()

    assert_rejected(
        outcome(Entity.CUSTOMER, record, now), Rule.DATE_NOT_FUTURE, "birth_date"
    )


@given(now=nows)
def test_a_birth_date_on_the_day_of_now_is_accepted(now: datetime) -> None:
    """A customer born today, whatever the hour, passes the rule."""
    record = records.customer()
    record["registration_date"] = now.isoformat()
    record["birth_date"] = now.date().isoformat()

    row = outcome(Entity.CUSTOMER, record, now)

    assert not isinstance(row, Rejection), row
    assert row.birth_date == now.date()


def test_an_aware_now_is_compared_as_wall_clock_time() -> None:
    """A zone on now is dropped, as the shop's times carry none."""
    record = changed(records.purchase(), "purchase_datetime", "2025-10-01T12:00:00")
    now = datetime.fromisoformat("2025-10-01T12:00:00+03:00")

    assert isinstance(outcome(Entity.PURCHASE, record, now), CleanPurchase)


@pytest.mark.parametrize(
    ("entity", "make", "path"),
    [
        (Entity.PRODUCT, records.product, "price"),
        (Entity.PURCHASE, records.purchase, "total_amount"),
        (Entity.PURCHASE, records.purchase, "items.0.quantity"),
        (Entity.PURCHASE, records.purchase, "items.0.price_per_unit"),
        (Entity.PURCHASE, records.purchase, "items.0.total_price"),
    ],
)
@given(value=negatives)
def test_a_negative_amount_breaks_not_negative(
    entity: Entity, make: Make, path: str, value: float
) -> None:
    """Prices, quantities and totals below zero are rejected by not_negative."""
    result = outcome(entity, changed(make(), path, value))

    assert_rejected(result, Rule.NOT_NEGATIVE, path)


@pytest.mark.parametrize(
    ("entity", "make", "paths"),
    [
        (Entity.PRODUCT, records.product, ["price"]),
        (Entity.PURCHASE, records.purchase, ["items.0.quantity"]),
        (Entity.PURCHASE, records.purchase, ["items.0.price_per_unit"]),
        (Entity.PURCHASE, records.purchase, ["items.0.total_price", "total_amount"]),
    ],
)
def test_zero_amounts_are_accepted(
    entity: Entity, make: Make, paths: list[str]
) -> None:
    """Zero is not negative."""
    record = make()
    for path in paths:
        changed(record, path, 0)

    row = outcome(entity, record)

    assert not isinstance(row, Rejection), row
    assert all(read(row, path) == 0 for path in paths)


@given(
    lines=st.lists(st.integers(0, 10_000_000), min_size=1, max_size=8),
    difference=st.integers(-1, 1),
)
def test_a_total_within_a_kopeck_of_its_lines_is_accepted(
    lines: list[int], difference: int
) -> None:
    """A total that differs from the sum of the lines by at most 0.01 passes."""
    total = sum(lines) + difference
    assume(total >= 0)

    row = outcome(Entity.PURCHASE, purchase_of_lines(lines, total))

    assert isinstance(row, CleanPurchase), row
    assert row.total_amount == Decimal(total) * KOPECK
    assert row.line_count == len(lines)


@given(
    lines=st.lists(st.integers(0, 10_000_000), min_size=1, max_size=8),
    difference=st.integers(2, 100_000),
    sign=st.sampled_from([-1, 1]),
)
def test_a_total_two_or_more_kopecks_off_breaks_total_matches_lines(
    lines: list[int], difference: int, sign: int
) -> None:
    """A total that differs from the sum of the lines by 0.02 or more is rejected."""
    total = sum(lines) + sign * difference
    assume(total >= 0)

    result = outcome(Entity.PURCHASE, purchase_of_lines(lines, total))

    assert_rejected(result, Rule.TOTAL_MATCHES_LINES, "total_amount")


@pytest.mark.parametrize(
    ("category", "code"),
    [
        ("🥖🥖 Зерновые и хлебобулочные изделия", "bakery"),
        ("🥩🥩 Мясо, рыба, яйца и бобовые", "meat"),
        ("🥛🥛 Молочные продукты", "dairy"),
        ("🍏🍏 Фрукты и ягоды", "fruits"),
        ("🥦🥦 Овощи и зелень", "vegetables"),
        ("🧴🧴 Бытовая химия", None),
    ],
)
def test_items_and_products_carry_the_category_code(
    category: str, code: str | None
) -> None:
    """The code of the category is stored next to the category text."""
    item = outcome(
        Entity.PURCHASE, changed(records.purchase(), "items.0.category", category)
    ).items[0]
    product = outcome(Entity.PRODUCT, changed(records.product(), "group", category))

    assert item.category == category.lower()
    assert (item.category_code, product.category_code) == (code, code)


@given(kopecks=st.integers(0, 10**11))
def test_a_price_in_whole_kopecks_is_kept_exactly(kopecks: int) -> None:
    """A price with at most two decimals is the same number of kopecks."""
    row = outcome(Entity.PRODUCT, changed(records.product(), "price", kopecks / 100))

    assert isinstance(row, CleanProduct)
    assert row.price == Decimal(kopecks) * KOPECK
    assert row.price.as_tuple().exponent == -2


@given(price=st.floats(0, 1e9))
def test_a_price_is_rounded_to_the_nearest_kopeck(price: float) -> None:
    """Any price is quantised to two decimals within half a kopeck."""
    row = outcome(Entity.PRODUCT, changed(records.product(), "price", price))

    assert isinstance(row, CleanProduct)
    assert row.price.as_tuple().exponent == -2
    assert abs(row.price - Decimal(repr(price))) <= KOPECK / 2


@given(price=st.floats(min_value=0, allow_infinity=False))
@example(price=1e26)
def test_clean_gives_a_row_or_a_rejection_for_any_finite_price(price: float) -> None:
    """No finite, non-negative price makes cleaning raise instead of deciding."""
    result = outcome(Entity.PRODUCT, changed(records.product(), "price", price))

    assert isinstance(result, CleanProduct | Rejection)


def test_money_on_a_purchase_is_in_kopecks_and_quantities_in_thousandths() -> None:
    """Amounts carry two decimals, quantities three."""
    record = records.purchase()
    changed(record, "items.0.quantity", 1.2345)
    changed(record, "items.0.price_per_unit", 54.105)

    row = outcome(Entity.PURCHASE, record)

    assert isinstance(row, CleanPurchase)
    line = row.items[0]
    assert (line.quantity, line.price_per_unit) == (Decimal("1.234"), Decimal("54.10"))
    assert (line.total_price, row.total_amount) == (
        Decimal("162.30"),
        Decimal("162.30"),
    )
    assert row.quantity_total == Decimal("1.234")


def test_dates_with_an_offset_keep_their_wall_clock_time() -> None:
    """An offset on a purchase time is dropped, not converted."""
    record = changed(
        records.purchase(), "purchase_datetime", "2025-08-29T20:46:44+03:00"
    )

    row = outcome(Entity.PURCHASE, record)

    assert isinstance(row, CleanPurchase)
    assert row.purchase_datetime == datetime(2025, 8, 29, 20, 46, 44)


def test_a_birth_date_is_kept_as_a_date() -> None:
    """The clean customer keeps the birth date, not a date-time."""
    row = outcome(Entity.CUSTOMER, records.customer())

    assert type(row.birth_date) is date
