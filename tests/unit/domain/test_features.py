"""The reference feature implementation, feature by feature, at every boundary."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from pikcha.domain.cleaning import CleanCustomer, CleanItem, CleanProduct, CleanPurchase
from pikcha.domain.features import (
    CATALOGUE,
    FEATURE_NAMES,
    OUTPUT_COLUMNS,
    compute_features,
)

AS_OF = datetime(2026, 3, 18, 12, 0)  # a Wednesday, at noon
SECOND = timedelta(seconds=1)
_ids = itertools.count(1)


def ago(days: int = 0, *, seconds: int = 0) -> datetime:
    return AS_OF - timedelta(days=days, seconds=seconds)


YESTERDAY = ago(1)
LONG_AGO = ago(365)


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    """Yesterday at the given wall-clock time."""
    return YESTERDAY.replace(hour=hour, minute=minute, second=second)


def on(weekday: int) -> datetime:
    """Noon of the last day up to ``AS_OF`` with that weekday (0 is Monday)."""
    return ago((AS_OF.weekday() - weekday) % 7)


def customer(
    customer_id: str = "c1",
    *,
    registered: datetime = LONG_AGO,
    loyalty: bool = False,
) -> CleanCustomer:
    return CleanCustomer(
        customer_id=customer_id,
        gender="f",
        birth_date=None,
        registration_date=registered,
        is_loyalty_member=loyalty,
        city="moscow",
        email_token=None,
        phone_token=None,
        loyalty_card_token=None,
    )


def line(
    code: str | None = None, *, product: str = "p-plain", qty: str = "1"
) -> CleanItem:
    """A purchase line; its prices are read by no feature."""
    return CleanItem(
        purchase_id="",
        line_no=0,
        product_id=product,
        name=product,
        category=code or "other",
        category_code=code,
        quantity=Decimal(qty),
        price_per_unit=Decimal("1.00"),
        total_price=Decimal("1.00"),
    )


def purchase(
    when: datetime = YESTERDAY,
    *,
    amount: str = "500.00",
    payment: str = "card",
    store: str = "s1",
    city: str = "moscow",
    delivery: bool = False,
    lines: Sequence[CleanItem] | None = None,
    customer_id: str = "c1",
) -> CleanPurchase:
    """By default a card purchase of 500 yesterday at noon, one plain line."""
    purchase_id = f"pu{next(_ids)}"
    items = tuple(
        replace(item, purchase_id=purchase_id, line_no=number)
        for number, item in enumerate(lines or [line()])
    )

    return CleanPurchase(
        purchase_id=purchase_id,
        customer_id=customer_id,
        store_id=store,
        store_city=city,
        purchase_datetime=when,
        total_amount=Decimal(amount),
        payment_method=payment,
        is_delivery=delivery,
        line_count=len(items),
        quantity_total=sum((item.quantity for item in items), Decimal(0)),
        items=items,
    )


def product(product_id: str, *, organic: bool) -> CleanProduct:
    return CleanProduct(
        product_id=product_id,
        name=product_id,
        category="other",
        category_code=None,
        price=Decimal("1.00"),
        is_organic=organic,
    )


def value(
    name: str,
    purchases: Sequence[CleanPurchase] = (),
    *,
    who: CleanCustomer | None = None,
    products: Sequence[CleanProduct] = (),
) -> int:
    """The feature ``name`` of the one customer ``c1`` (by default) at ``AS_OF``."""
    (row,) = compute_features([who or customer()], purchases, products, AS_OF)

    return row.values[FEATURE_NAMES.index(name)]


def many(count: int, **kwargs: Any) -> list[CleanPurchase]:
    """``count`` purchases made alike."""
    return [purchase(**kwargs) for _ in range(count)]


# The catalogue


def test_catalogue_numbers_thirty_features_from_one() -> None:
    """The catalogue holds features 1 to 30, in order."""
    assert [feature.number for feature in CATALOGUE] == list(range(1, 31))


def test_catalogue_names_are_unique() -> None:
    """No two features share a name."""
    assert len(set(FEATURE_NAMES)) == len(CATALOGUE) == 30


def test_catalogue_names_follow_features_md() -> None:
    """The names are those of FEATURES.md, in its order."""
    assert FEATURE_NAMES == (
        "bought_milk_last_30d",
        "bought_fruits_last_14d",
        "not_bought_veggies_14d",
        "recurrent_buyer",
        "inactive_14_30",
        "new_customer",
        "delivery_user",
        "organic_preference",
        "bulk_buyer",
        "low_cost_buyer",
        "buys_bakery",
        "loyal_customer",
        "multicity_buyer",
        "night_shopper",
        "morning_shopper",
        "prefers_cash",
        "prefers_card",
        "weekend_shopper",
        "weekday_shopper",
        "single_item_buyer",
        "varied_shopper",
        "store_loyal",
        "switching_store",
        "family_shopper",
        "early_bird",
        "no_purchases",
        "recent_high_spender",
        "fruit_lover",
        "vegetarian_profile",
        "high_value_customer",
    )


def test_output_columns_wrap_the_features() -> None:
    """The output is the customer id, the thirty features, as_of and version."""
    columns = ["customer_id", *FEATURE_NAMES, "as_of", "catalogue_version"]

    assert list(OUTPUT_COLUMNS) == columns


# The table


def test_rows_are_sorted_by_customer_id() -> None:
    """Rows come in customer_id order, whatever the input order."""
    customers = [customer(cid) for cid in ("c3", "c1", "c10", "c2")]

    rows = compute_features(customers, [], [], AS_OF)

    assert [row.customer_id for row in rows] == ["c1", "c10", "c2", "c3"]


def test_every_row_has_thirty_values() -> None:
    """Each row carries one 0/1 value per feature."""
    (row,) = compute_features([customer()], [purchase()], [], AS_OF)

    assert len(row.values) == 30
    assert set(row.values) <= {0, 1}


@pytest.mark.parametrize(
    ("registered", "rows"),
    [
        pytest.param(AS_OF, 1, id="registered-at-as_of-included"),
        pytest.param(AS_OF + timedelta(microseconds=1), 0, id="after-as_of-excluded"),
    ],
)
def test_customers_registered_after_as_of_are_excluded(
    registered: datetime, rows: int
) -> None:
    """A customer registered after as_of has no row; one registered at it has."""
    table = compute_features([customer(registered=registered)], [], [], AS_OF)

    assert len(table) == rows


def test_purchases_of_unknown_customers_are_ignored() -> None:
    """A purchase whose customer is unknown adds no row and changes no row."""
    stranger = purchase(customer_id="ghost", delivery=True)

    (row,) = compute_features([customer()], [stranger], [], AS_OF)

    assert row.customer_id == "c1"
    assert row.values[FEATURE_NAMES.index("no_purchases")] == 1
    assert row.values[FEATURE_NAMES.index("delivery_user")] == 0


def test_purchases_of_customers_registered_after_as_of_are_ignored() -> None:
    """A purchase of a customer not yet registered at as_of produces nothing."""
    late = customer("c2", registered=AS_OF + SECOND)

    rows = compute_features([customer(), late], [purchase(customer_id="c2")], [], AS_OF)

    assert [row.customer_id for row in rows] == ["c1"]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        pytest.param(AS_OF, 0, id="at-as_of-visible"),
        pytest.param(AS_OF + timedelta(microseconds=1), 1, id="after-as_of-invisible"),
    ],
)
def test_purchases_after_as_of_are_invisible(when: datetime, expected: int) -> None:
    """A purchase at as_of counts; one a microsecond later does not exist yet."""
    assert value("no_purchases", [purchase(when)]) == expected


# 1 .. 5: recent categories and activity


@pytest.mark.parametrize(
    ("purchases", "expected"),
    [
        pytest.param([purchase(AS_OF, lines=[line("dairy")])], 1, id="at-as_of"),
        pytest.param(
            [purchase(ago(30, seconds=-1), lines=[line("dairy")])], 1, id="30d-less-1s"
        ),
        pytest.param([purchase(ago(30), lines=[line("dairy")])], 0, id="exactly-30d"),
        pytest.param([purchase(lines=[line("fruits")])], 0, id="no-dairy"),
        pytest.param([], 0, id="no-purchases"),
    ],
)
def test_bought_milk_last_30d(purchases: list[CleanPurchase], expected: int) -> None:
    """A dairy line within (as_of - 30 days, as_of]."""
    assert value("bought_milk_last_30d", purchases) == expected


@pytest.mark.parametrize(
    ("purchases", "expected"),
    [
        pytest.param(
            [purchase(ago(14, seconds=-1), lines=[line("fruits")])], 1, id="14d-less-1s"
        ),
        pytest.param([purchase(ago(14), lines=[line("fruits")])], 0, id="exactly-14d"),
        pytest.param([purchase(lines=[line("dairy"), line()])], 0, id="no-fruits"),
        pytest.param(
            [purchase(lines=[line("dairy"), line("fruits")])], 1, id="fruits-on-a-line"
        ),
    ],
)
def test_bought_fruits_last_14d(purchases: list[CleanPurchase], expected: int) -> None:
    """A fruits line within (as_of - 14 days, as_of]."""
    assert value("bought_fruits_last_14d", purchases) == expected


@pytest.mark.parametrize(
    ("purchases", "expected"),
    [
        pytest.param([], 1, id="no-purchases"),
        pytest.param([purchase(lines=[line("fruits")])], 1, id="no-vegetables"),
        pytest.param([purchase(ago(14), lines=[line("vegetables")])], 1, id="at-14d"),
        pytest.param(
            [purchase(ago(14, seconds=-1), lines=[line("vegetables")])],
            0,
            id="14d-less-1s",
        ),
        pytest.param(
            [purchase(AS_OF + SECOND, lines=[line("vegetables")])], 1, id="after-as_of"
        ),
    ],
)
def test_not_bought_veggies_14d(purchases: list[CleanPurchase], expected: int) -> None:
    """No vegetables line within the last 14 days, true with no purchases."""
    assert value("not_bought_veggies_14d", purchases) == expected


@pytest.mark.parametrize(
    ("purchases", "expected"),
    [
        pytest.param(many(3, when=ago(29)), 1, id="three-in-30d"),
        pytest.param(many(2), 0, id="two"),
        pytest.param([*many(2), purchase(ago(30))], 0, id="third-at-exactly-30d"),
        pytest.param([*many(2), purchase(AS_OF)], 1, id="third-at-as_of"),
    ],
)
def test_recurrent_buyer(purchases: list[CleanPurchase], expected: int) -> None:
    """At least three purchases in the last 30 days."""
    assert value("recurrent_buyer", purchases) == expected


@pytest.mark.parametrize(
    ("purchases", "expected"),
    [
        pytest.param([purchase(ago(14))], 1, id="exactly-14d"),
        pytest.param([purchase(ago(30, seconds=-1))], 1, id="30d-less-1s"),
        pytest.param([purchase(ago(30))], 0, id="exactly-30d"),
        pytest.param([purchase(ago(14, seconds=-1))], 0, id="14d-less-1s"),
        pytest.param([purchase(ago(20)), purchase(ago(1))], 0, id="also-recent"),
        pytest.param([], 0, id="no-purchases"),
    ],
)
def test_inactive_14_30(purchases: list[CleanPurchase], expected: int) -> None:
    """A purchase in (as_of - 30d, as_of - 14d] and none in the last 14 days."""
    assert value("inactive_14_30", purchases) == expected


# 6 .. 8: registration, delivery, organic


@pytest.mark.parametrize(
    ("registered", "expected"),
    [
        pytest.param(AS_OF, 1, id="at-as_of"),
        pytest.param(ago(30, seconds=-1), 1, id="30d-less-1s"),
        pytest.param(ago(30), 0, id="exactly-30d"),
        pytest.param(ago(400), 0, id="long-ago"),
    ],
)
def test_new_customer(registered: datetime, expected: int) -> None:
    """Registered within (as_of - 30 days, as_of]."""
    assert value("new_customer", who=customer(registered=registered)) == expected


@pytest.mark.parametrize(
    ("purchases", "expected"),
    [
        pytest.param([purchase(), purchase(ago(300), delivery=True)], 1, id="one"),
        pytest.param([purchase()], 0, id="none"),
        pytest.param([purchase(AS_OF + SECOND, delivery=True)], 0, id="after-as_of"),
    ],
)
def test_delivery_user(purchases: list[CleanPurchase], expected: int) -> None:
    """Some visible purchase was delivered."""
    assert value("delivery_user", purchases) == expected


@pytest.mark.parametrize(
    ("product_id", "expected"),
    [
        pytest.param("p-organic", 1, id="organic"),
        pytest.param("p-plain", 0, id="not-organic"),
        pytest.param("p-unknown", 0, id="unknown-product"),
    ],
)
def test_organic_preference(product_id: str, expected: int) -> None:
    """Some line's product is organic in the product table."""
    products = [product("p-organic", organic=True), product("p-plain", organic=False)]
    purchases = [purchase(lines=[line(), line(product=product_id)])]

    assert value("organic_preference", purchases, products=products) == expected


# 9, 10: average basket


@pytest.mark.parametrize(
    ("amounts", "expected"),
    [
        pytest.param(["1000.00"], 0, id="exactly-1000"),
        pytest.param(["999.99", "1000.01"], 0, id="average-exactly-1000"),
        pytest.param(["1000.01"], 1, id="1000.01"),
        pytest.param(["1000.00", "1000.01"], 1, id="average-1000.005"),
        pytest.param([], 0, id="no-purchases"),
    ],
)
def test_bulk_buyer(amounts: list[str], expected: int) -> None:
    """The average basket is above 1000, decided exactly."""
    purchases = [purchase(amount=amount) for amount in amounts]

    assert value("bulk_buyer", purchases) == expected


@pytest.mark.parametrize(
    ("amounts", "expected"),
    [
        pytest.param(["200.00"], 0, id="exactly-200"),
        pytest.param(["199.99", "200.01"], 0, id="average-exactly-200"),
        pytest.param(["199.99"], 1, id="199.99"),
        pytest.param(["199.99", "200.00"], 1, id="average-199.995"),
        pytest.param(["0.00"], 1, id="free"),
        pytest.param([], 0, id="no-purchases"),
    ],
)
def test_low_cost_buyer(amounts: list[str], expected: int) -> None:
    """The average basket is below 200, decided exactly."""
    purchases = [purchase(amount=amount) for amount in amounts]

    assert value("low_cost_buyer", purchases) == expected


# 11 .. 13


@pytest.mark.parametrize(
    ("purchases", "expected"),
    [
        pytest.param([purchase(ago(365), lines=[line("bakery")])], 1, id="long-ago"),
        pytest.param([purchase(lines=[line("dairy"), line()])], 0, id="none"),
        pytest.param(
            [purchase(AS_OF + SECOND, lines=[line("bakery")])], 0, id="after-as_of"
        ),
    ],
)
def test_buys_bakery(purchases: list[CleanPurchase], expected: int) -> None:
    """Some visible purchase has a bakery line, however old."""
    assert value("buys_bakery", purchases) == expected


@pytest.mark.parametrize(
    ("loyalty", "count", "expected"),
    [
        pytest.param(True, 3, 1, id="member-with-3"),
        pytest.param(True, 2, 0, id="member-with-2"),
        pytest.param(False, 3, 0, id="not-member"),
    ],
)
def test_loyal_customer(loyalty: bool, count: int, expected: int) -> None:
    """A loyalty member with at least three purchases."""
    who = customer(loyalty=loyalty)

    assert value("loyal_customer", many(count, when=ago(200)), who=who) == expected


@pytest.mark.parametrize(
    ("purchases", "expected"),
    [
        pytest.param(
            [purchase(store="s1", city="moscow"), purchase(store="s2", city="kazan")],
            1,
            id="two-cities",
        ),
        pytest.param(
            [purchase(store="s1", city="moscow"), purchase(store="s2", city="moscow")],
            0,
            id="two-stores-one-city",
        ),
        pytest.param([purchase()], 0, id="one-purchase"),
    ],
)
def test_multicity_buyer(purchases: list[CleanPurchase], expected: int) -> None:
    """Purchases in stores of at least two cities."""
    assert value("multicity_buyer", purchases) == expected


# 14, 15, 25: time of day


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        pytest.param(at(20), 1, id="20:00:00"),
        pytest.param(at(23, 59, 59), 1, id="23:59:59"),
        pytest.param(at(19, 59, 59), 0, id="19:59:59"),
    ],
)
def test_night_shopper(when: datetime, expected: int) -> None:
    """A purchase at or after 20:00."""
    assert value("night_shopper", [purchase(when)]) == expected


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        pytest.param(at(9, 59, 59), 1, id="09:59:59"),
        pytest.param(at(0), 1, id="midnight"),
        pytest.param(at(10), 0, id="10:00:00"),
    ],
)
def test_morning_shopper(when: datetime, expected: int) -> None:
    """A purchase before 10:00."""
    assert value("morning_shopper", [purchase(when)]) == expected


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        pytest.param(at(7), 1, id="07:00:00"),
        pytest.param(at(8, 59, 59), 1, id="08:59:59"),
        pytest.param(at(9), 0, id="09:00:00"),
        pytest.param(at(6, 59, 59), 0, id="06:59:59"),
    ],
)
def test_early_bird(when: datetime, expected: int) -> None:
    """A purchase from 07:00 up to but not including 09:00."""
    assert value("early_bird", [purchase(when)]) == expected


# 16, 17: payment shares


@pytest.mark.parametrize(
    ("matching", "others", "expected"),
    [
        pytest.param(7, 3, 0, id="exactly-0.7"),
        pytest.param(5, 2, 1, id="0.714"),
        pytest.param(1, 0, 1, id="all"),
        pytest.param(0, 0, 0, id="no-purchases"),
    ],
)
@pytest.mark.parametrize(
    ("name", "method", "other"),
    [
        pytest.param("prefers_cash", "cash", "card", id="cash"),
        pytest.param("prefers_card", "card", "cash", id="card"),
    ],
)
def test_prefers_payment_method(
    name: str, method: str, other: str, matching: int, others: int, expected: int
) -> None:
    """More than 0.7 of the purchases paid by the method."""
    purchases = many(matching, payment=method) + many(others, payment=other)

    assert value(name, purchases) == expected


def test_prefers_cash_counts_other_methods_in_the_share() -> None:
    """Purchases paid some other way still count in the denominator."""
    purchases = many(7, payment="cash") + many(3, payment="other")

    assert value("prefers_cash", purchases) == 0


# 18, 19: weekdays


@pytest.mark.parametrize(
    ("weekend", "weekdays", "expected"),
    [
        pytest.param(3, 2, 1, id="exactly-0.6"),
        pytest.param(1, 1, 0, id="0.5"),
        pytest.param(1, 0, 1, id="all"),
        pytest.param(0, 0, 0, id="no-purchases"),
    ],
)
def test_weekend_shopper(weekend: int, weekdays: int, expected: int) -> None:
    """At least 0.6 of the purchases on Saturday or Sunday."""
    days = [on(5), on(6)] * weekend
    purchases = [purchase(day) for day in days[:weekend]] + many(weekdays, when=on(0))

    assert value("weekend_shopper", purchases) == expected


@pytest.mark.parametrize(
    ("weekdays", "weekend", "expected"),
    [
        pytest.param(3, 2, 1, id="exactly-0.6"),
        pytest.param(1, 1, 0, id="0.5"),
        pytest.param(1, 0, 1, id="all"),
        pytest.param(0, 0, 0, id="no-purchases"),
    ],
)
def test_weekday_shopper(weekdays: int, weekend: int, expected: int) -> None:
    """At least 0.6 of the purchases on Monday to Friday."""
    days = [on(day) for day in range(5)] * weekdays
    purchases = [purchase(day) for day in days[:weekdays]] + many(weekend, when=on(6))

    assert value("weekday_shopper", purchases) == expected


@pytest.mark.parametrize(
    ("weekday", "weekend"),
    [(day, 0) for day in range(5)] + [(day, 1) for day in (5, 6)],
)
def test_saturday_and_sunday_are_the_weekend(weekday: int, weekend: int) -> None:
    """Saturday and Sunday are the weekend, Monday to Friday are not."""
    assert value("weekend_shopper", [purchase(on(weekday))]) == weekend


# 20 .. 24: baskets and stores


@pytest.mark.parametrize(
    ("singles", "multis", "expected"),
    [
        pytest.param(1, 1, 1, id="exactly-0.5"),
        pytest.param(1, 2, 0, id="0.33"),
        pytest.param(1, 0, 1, id="all"),
        pytest.param(0, 0, 0, id="no-purchases"),
    ],
)
def test_single_item_buyer(singles: int, multis: int, expected: int) -> None:
    """At least half of the purchases have exactly one line."""
    purchases = many(singles) + many(multis, lines=[line(), line()])

    assert value("single_item_buyer", purchases) == expected


def test_single_item_buyer_counts_lines_not_quantity() -> None:
    """One line of ten units is still a single-item purchase."""
    assert value("single_item_buyer", [purchase(lines=[line(qty="10")])]) == 1


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        pytest.param([["bakery", "meat"], ["dairy", "fruits"]], 1, id="four"),
        pytest.param([["bakery", "meat", "dairy", None, None]], 0, id="three-and-none"),
        pytest.param([["bakery", "bakery"], ["meat", "dairy"]], 0, id="three-repeated"),
    ],
)
def test_varied_shopper(codes: list[list[str | None]], expected: int) -> None:
    """Lines of at least four different categories, lines without one not counted."""
    purchases = [purchase(lines=[line(code) for code in basket]) for basket in codes]

    assert value("varied_shopper", purchases) == expected


@pytest.mark.parametrize(
    ("stores", "expected"),
    [
        pytest.param(["s1"], 1, id="one-purchase"),
        pytest.param(["s1", "s1", "s1"], 1, id="same-store"),
        pytest.param(["s1", "s2"], 0, id="two-stores"),
        pytest.param([], 0, id="no-purchases"),
    ],
)
def test_store_loyal(stores: list[str], expected: int) -> None:
    """At least one purchase, all in the same store."""
    purchases = [purchase(store=store) for store in stores]

    assert value("store_loyal", purchases) == expected


@pytest.mark.parametrize(
    ("stores", "expected"),
    [
        pytest.param(["s1", "s2"], 1, id="two-stores"),
        pytest.param(["s1", "s1"], 0, id="same-store"),
        pytest.param([], 0, id="no-purchases"),
    ],
)
def test_switching_store(stores: list[str], expected: int) -> None:
    """Purchases in at least two different stores."""
    purchases = [purchase(store=store) for store in stores]

    assert value("switching_store", purchases) == expected


@pytest.mark.parametrize(
    ("quantities", "expected"),
    [
        pytest.param([["4"]], 1, id="exactly-4"),
        pytest.param([["1.5", "2"], ["4.5"]], 1, id="average-exactly-4"),
        pytest.param([["2", "1.999"]], 0, id="3.999"),
        pytest.param([["4"], ["3.999"]], 0, id="average-3.9995"),
        pytest.param([], 0, id="no-purchases"),
    ],
)
def test_family_shopper(quantities: list[list[str]], expected: int) -> None:
    """The average quantity per purchase is at least 4."""
    purchases = [purchase(lines=[line(qty=q) for q in basket]) for basket in quantities]

    assert value("family_shopper", purchases) == expected


# 26 .. 30


@pytest.mark.parametrize(
    ("purchases", "expected"),
    [
        pytest.param([], 1, id="none"),
        pytest.param([purchase(ago(1000))], 0, id="one-long-ago"),
    ],
)
def test_no_purchases(purchases: list[CleanPurchase], expected: int) -> None:
    """No visible purchase at all."""
    assert value("no_purchases", purchases) == expected


@pytest.mark.parametrize(
    ("purchases", "expected"),
    [
        pytest.param(
            [purchase(amount="1500.00"), purchase(AS_OF, amount="500.00")],
            0,
            id="exactly-2000",
        ),
        pytest.param(
            [purchase(amount="1500.00"), purchase(amount="500.01")], 1, id="2000.01"
        ),
        pytest.param(
            [purchase(amount="1500.00"), purchase(ago(7), amount="600.00")],
            0,
            id="one-at-exactly-7d",
        ),
        pytest.param(
            [purchase(amount="1500.00"), purchase(ago(7, seconds=-1), amount="600.00")],
            1,
            id="one-at-7d-less-1s",
        ),
    ],
)
def test_recent_high_spender(purchases: list[CleanPurchase], expected: int) -> None:
    """The baskets of the last 7 days sum to more than 2000."""
    assert value("recent_high_spender", purchases) == expected


@pytest.mark.parametrize(
    ("purchases", "expected"),
    [
        pytest.param(many(3, when=ago(29), lines=[line("fruits")]), 1, id="three"),
        pytest.param(many(2, lines=[line("fruits")]), 0, id="two"),
        pytest.param(
            [
                *many(2, lines=[line("fruits")]),
                purchase(ago(30), lines=[line("fruits")]),
            ],
            0,
            id="third-at-exactly-30d",
        ),
        pytest.param(
            [*many(2, lines=[line("fruits")]), purchase(lines=[line("dairy")])],
            0,
            id="third-without-fruits",
        ),
    ],
)
def test_fruit_lover(purchases: list[CleanPurchase], expected: int) -> None:
    """At least three purchases of the last 30 days have a fruits line."""
    assert value("fruit_lover", purchases) == expected


@pytest.mark.parametrize(
    ("purchases", "expected"),
    [
        pytest.param([purchase(ago(89), lines=[line("vegetables")])], 1, id="no-meat"),
        pytest.param(
            [purchase(), purchase(ago(50), lines=[line("dairy"), line("meat")])],
            0,
            id="meat-in-one",
        ),
        pytest.param([purchase(ago(90))], 0, id="only-at-exactly-90d"),
        pytest.param(
            [purchase(), purchase(ago(90), lines=[line("meat")])],
            1,
            id="meat-at-exactly-90d",
        ),
        pytest.param([], 0, id="no-purchases"),
    ],
)
def test_vegetarian_profile(purchases: list[CleanPurchase], expected: int) -> None:
    """A purchase in the last 90 days, none of them with a meat line."""
    assert value("vegetarian_profile", purchases) == expected


@pytest.mark.parametrize(
    ("purchases", "expected"),
    [
        pytest.param(
            [purchase(ago(900), amount="9000.00"), purchase(amount="1000.00")],
            1,
            id="exactly-10000",
        ),
        pytest.param([purchase(amount="9999.99")], 0, id="9999.99"),
        pytest.param(
            [purchase(amount="9999.99"), purchase(AS_OF + SECOND, amount="0.01")],
            0,
            id="rest-after-as_of",
        ),
    ],
)
def test_high_value_customer(purchases: list[CleanPurchase], expected: int) -> None:
    """All visible baskets sum to at least 10000."""
    assert value("high_value_customer", purchases) == expected
