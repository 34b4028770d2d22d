"""The customer feature catalogue and its reference implementation.

The catalogue is data: number, name and description of each of the thirty
yes/no features of FEATURES.md. :func:`compute_features` is the reference the
other engines must equal row for row. Every ratio is decided in integers or
exact decimals, never in floating point.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from pikcha.domain.cleaning import CleanCustomer, CleanProduct, CleanPurchase

CATALOGUE_VERSION = "1"


@dataclass(frozen=True, slots=True)
class Feature:
    number: int
    name: str
    description: str


CATALOGUE: tuple[Feature, ...] = tuple(
    Feature(number, name, description)
    for number, (name, description) in enumerate(
        [
            ("bought_milk_last_30d", "a purchase in the last 30 days has a dairy item"),
            (
                "bought_fruits_last_14d",
                "a purchase in the last 14 days has a fruits item",
            ),
            (
                "not_bought_veggies_14d",
                "no purchase in the last 14 days has a vegetables item",
            ),
            ("recurrent_buyer", "at least 3 purchases in the last 30 days"),
            (
                "inactive_14_30",
                "a purchase 14 to 30 days ago and none in the last 14 days",
            ),
            ("new_customer", "registered in the last 30 days"),
            ("delivery_user", "a purchase with delivery"),
            ("organic_preference", "a purchase with an organic product"),
            ("bulk_buyer", "average basket above 1000"),
            ("low_cost_buyer", "average basket below 200"),
            ("buys_bakery", "a purchase has a bakery item"),
            ("loyal_customer", "loyalty member with at least 3 purchases"),
            ("multicity_buyer", "purchases in stores of at least 2 cities"),
            ("night_shopper", "a purchase at or after 20:00"),
            ("morning_shopper", "a purchase before 10:00"),
            ("prefers_cash", "more than 70% of purchases paid in cash"),
            ("prefers_card", "more than 70% of purchases paid by card"),
            ("weekend_shopper", "at least 60% of purchases on Saturday or Sunday"),
            ("weekday_shopper", "at least 60% of purchases on Monday to Friday"),
            ("single_item_buyer", "at least 50% of purchases have one item line"),
            ("varied_shopper", "items of at least 4 different categories"),
            ("store_loyal", "every purchase in the same store"),
            ("switching_store", "purchases in at least 2 different stores"),
            ("family_shopper", "average quantity per purchase at least 4"),
            ("early_bird", "a purchase from 07:00 up to 09:00"),
            ("no_purchases", "no purchases"),
            ("recent_high_spender", "baskets of the last 7 days sum to more than 2000"),
            ("fruit_lover", "at least 3 purchases in the last 30 days have fruits"),
            (
                "vegetarian_profile",
                "a purchase in the last 90 days and none of those has meat",
            ),
            ("high_value_customer", "all baskets sum to at least 10000"),
        ],
        start=1,
    )
)
FEATURE_NAMES: tuple[str, ...] = tuple(feature.name for feature in CATALOGUE)
OUTPUT_COLUMNS: tuple[str, ...] = (
    "customer_id",
    *FEATURE_NAMES,
    "as_of",
    "catalogue_version",
)


@dataclass(frozen=True, slots=True)
class FeatureRow:
    """One customer's features: ``values`` are 0 or 1, in catalogue order."""

    customer_id: str
    values: tuple[int, ...]


def _in_last(when: datetime, as_of: datetime, days: int) -> bool:
    return as_of - timedelta(days=days) < when <= as_of


def customer_features(
    customer: CleanCustomer,
    purchases: Sequence[CleanPurchase],
    organic: frozenset[str],
    as_of: datetime,
) -> tuple[int, ...]:
    """The thirty values of one customer; ``purchases`` are already ``P``."""
    n = len(purchases)
    last7 = [p for p in purchases if _in_last(p.purchase_datetime, as_of, 7)]
    last14 = [p for p in purchases if _in_last(p.purchase_datetime, as_of, 14)]
    last30 = [p for p in purchases if _in_last(p.purchase_datetime, as_of, 30)]
    last90 = [p for p in purchases if _in_last(p.purchase_datetime, as_of, 90)]
    days14_30 = [p for p in last30 if p.purchase_datetime <= as_of - timedelta(days=14)]

    def has(p: CleanPurchase, code: str) -> bool:
        return any(item.category_code == code for item in p.items)

    spent = sum((p.total_amount for p in purchases), Decimal(0))
    hours = [p.purchase_datetime.hour for p in purchases]
    weekend = sum(1 for p in purchases if p.purchase_datetime.weekday() >= 5)
    cash = sum(1 for p in purchases if p.payment_method == "cash")
    card = sum(1 for p in purchases if p.payment_method == "card")
    stores = {p.store_id for p in purchases}
    codes = {i.category_code for p in purchases for i in p.items if i.category_code}
    quantity = sum((p.quantity_total for p in purchases), Decimal(0))

    values = (
        any(has(p, "dairy") for p in last30),
        any(has(p, "fruits") for p in last14),
        not any(has(p, "vegetables") for p in last14),
        len(last30) >= 3,
        bool(days14_30) and not last14,
        _in_last(customer.registration_date, as_of, 30),
        any(p.is_delivery for p in purchases),
        any(i.product_id in organic for p in purchases for i in p.items),
        n >= 1 and spent > 1000 * n,
        n >= 1 and spent < 200 * n,
        any(has(p, "bakery") for p in purchases),
        customer.is_loyalty_member and n >= 3,
        len({p.store_city for p in purchases}) >= 2,
        any(hour >= 20 for hour in hours),
        any(hour < 10 for hour in hours),
        n >= 1 and 10 * cash > 7 * n,
        n >= 1 and 10 * card > 7 * n,
        n >= 1 and 10 * weekend >= 6 * n,
        n >= 1 and 10 * (n - weekend) >= 6 * n,
        n >= 1 and 2 * sum(1 for p in purchases if p.line_count == 1) >= n,
        len(codes) >= 4,
        n >= 1 and len(stores) == 1,
        len(stores) >= 2,
        n >= 1 and quantity >= 4 * n,
        any(7 <= hour < 9 for hour in hours),
        n == 0,
        sum((p.total_amount for p in last7), Decimal(0)) > 2000,
        sum(1 for p in last30 if has(p, "fruits")) >= 3,
        bool(last90) and not any(has(p, "meat") for p in last90),
        spent >= 10000,
    )

    return tuple(int(value) for value in values)


def compute_features(
    customers: Iterable[CleanCustomer],
    purchases: Iterable[CleanPurchase],
    products: Iterable[CleanProduct],
    as_of: datetime,
) -> list[FeatureRow]:
    """The feature table for ``as_of``, one row per eligible customer, by id."""
    eligible = {c.customer_id: c for c in customers if c.registration_date <= as_of}
    organic = frozenset(p.product_id for p in products if p.is_organic)
    by_customer: Mapping[str, list[CleanPurchase]] = defaultdict(list)
    for purchase in purchases:
        if purchase.customer_id in eligible and purchase.purchase_datetime <= as_of:
            by_customer[purchase.customer_id].append(purchase)

    return [
        FeatureRow(
            cid,
            customer_features(eligible[cid], by_customer.get(cid, []), organic, as_of),
        )
        for cid in sorted(eligible)
    ]
