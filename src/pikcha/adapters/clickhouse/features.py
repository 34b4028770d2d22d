"""The feature table computed by ClickHouse SQL over the ``current_*`` views.

One query decides all thirty features inside ClickHouse, in integers and
decimals only, so that it equals :func:`pikcha.domain.features.compute_features`
row for row. ``as_of`` travels as a bound ``DateTime64(6, 'UTC')`` parameter:
the stored datetimes are the shop's wall-clock time in ``UTC`` columns, so hours,
weekdays and day intervals are taken without any zone conversion, whatever the
server's own time zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError

from pikcha.domain.errors import InfrastructureError
from pikcha.domain.features import FEATURE_NAMES, FeatureRow

FEATURES_SQL = """
WITH
    {as_of:DateTime64(6, 'UTC')} AS as_of,
    eligible AS (
        SELECT customer_id, registration_date, is_loyalty_member
        FROM current_customers
        WHERE registration_date <= as_of
    ),
    organic AS (
        SELECT product_id FROM current_products WHERE is_organic
    ),
    baskets AS (
        SELECT
            purchase_id,
            countIf(ifNull(category_code, '') = 'dairy') > 0 AS has_dairy,
            countIf(ifNull(category_code, '') = 'fruits') > 0 AS has_fruits,
            countIf(ifNull(category_code, '') = 'vegetables') > 0 AS has_vegetables,
            countIf(ifNull(category_code, '') = 'bakery') > 0 AS has_bakery,
            countIf(ifNull(category_code, '') = 'meat') > 0 AS has_meat,
            countIf(product_id IN (SELECT product_id FROM organic)) > 0 AS has_organic,
            groupUniqArrayIf(
                assumeNotNull(category_code), ifNull(category_code, '') != ''
            ) AS codes
        FROM current_purchase_items
        GROUP BY purchase_id
    ),
    visible AS (
        SELECT
            p.customer_id AS customer_id,
            p.store_id AS store_id,
            p.store_city AS store_city,
            p.purchase_datetime AS purchased_at,
            toHour(p.purchase_datetime) AS hour,
            p.total_amount AS amount,
            p.payment_method AS payment_method,
            p.is_delivery AS is_delivery,
            p.line_count AS line_count,
            p.quantity_total AS quantity,
            p.purchase_datetime > as_of - INTERVAL 7 DAY AS in7,
            p.purchase_datetime > as_of - INTERVAL 14 DAY AS in14,
            p.purchase_datetime > as_of - INTERVAL 30 DAY AS in30,
            p.purchase_datetime > as_of - INTERVAL 90 DAY AS in90,
            b.has_dairy AS has_dairy,
            b.has_fruits AS has_fruits,
            b.has_vegetables AS has_vegetables,
            b.has_bakery AS has_bakery,
            b.has_meat AS has_meat,
            b.has_organic AS has_organic,
            b.codes AS codes
        FROM current_purchases AS p
        LEFT JOIN baskets AS b ON b.purchase_id = p.purchase_id
        WHERE p.purchase_datetime <= as_of
            AND p.customer_id IN (SELECT customer_id FROM eligible)
    ),
    totals AS (
        SELECT
            customer_id,
            count() AS n,
            sum(amount) AS spent,
            sum(quantity) AS quantity_sum,
            sumIf(amount, in7) AS spent7,
            countIf(in14) AS n14,
            countIf(in30) AS n30,
            countIf(in30 AND NOT in14) AS n14_30,
            countIf(in90) AS n90,
            countIf(in30 AND has_dairy) AS dairy30,
            countIf(in14 AND has_fruits) AS fruits14,
            countIf(in30 AND has_fruits) AS fruits30,
            countIf(in14 AND has_vegetables) AS vegetables14,
            countIf(in90 AND has_meat) AS meat90,
            countIf(has_bakery) AS bakery,
            countIf(has_organic) AS organic,
            countIf(is_delivery) AS delivery,
            countIf(hour >= 20) AS night,
            countIf(hour < 10) AS morning,
            countIf(hour >= 7 AND hour < 9) AS early,
            countIf(payment_method = 'cash') AS cash,
            countIf(payment_method = 'card') AS card,
            countIf(toDayOfWeek(purchased_at) >= 6) AS weekend,
            countIf(line_count = 1) AS single,
            uniqExact(store_id) AS stores,
            uniqExact(store_city) AS cities,
            length(groupUniqArrayArray(codes)) AS categories
        FROM visible
        GROUP BY customer_id
    )
SELECT
    c.customer_id AS customer_id,
    toUInt8(t.dairy30 > 0) AS bought_milk_last_30d,
    toUInt8(t.fruits14 > 0) AS bought_fruits_last_14d,
    toUInt8(t.vegetables14 = 0) AS not_bought_veggies_14d,
    toUInt8(t.n30 >= 3) AS recurrent_buyer,
    toUInt8(t.n14_30 > 0 AND t.n14 = 0) AS inactive_14_30,
    toUInt8(c.registration_date > as_of - INTERVAL 30 DAY) AS new_customer,
    toUInt8(t.delivery > 0) AS delivery_user,
    toUInt8(t.organic > 0) AS organic_preference,
    toUInt8(t.n >= 1 AND t.spent > 1000 * t.n) AS bulk_buyer,
    toUInt8(t.n >= 1 AND t.spent < 200 * t.n) AS low_cost_buyer,
    toUInt8(t.bakery > 0) AS buys_bakery,
    toUInt8(c.is_loyalty_member AND t.n >= 3) AS loyal_customer,
    toUInt8(t.cities >= 2) AS multicity_buyer,
    toUInt8(t.night > 0) AS night_shopper,
    toUInt8(t.morning > 0) AS morning_shopper,
    toUInt8(t.n >= 1 AND 10 * t.cash > 7 * t.n) AS prefers_cash,
    toUInt8(t.n >= 1 AND 10 * t.card > 7 * t.n) AS prefers_card,
    toUInt8(t.n >= 1 AND 10 * t.weekend >= 6 * t.n) AS weekend_shopper,
    toUInt8(t.n >= 1 AND 10 * (t.n - t.weekend) >= 6 * t.n) AS weekday_shopper,
    toUInt8(t.n >= 1 AND 2 * t.single >= t.n) AS single_item_buyer,
    toUInt8(t.categories >= 4) AS varied_shopper,
    toUInt8(t.n >= 1 AND t.stores = 1) AS store_loyal,
    toUInt8(t.stores >= 2) AS switching_store,
    toUInt8(t.n >= 1 AND t.quantity_sum >= 4 * t.n) AS family_shopper,
    toUInt8(t.early > 0) AS early_bird,
    toUInt8(t.n = 0) AS no_purchases,
    toUInt8(t.spent7 > 2000) AS recent_high_spender,
    toUInt8(t.fruits30 >= 3) AS fruit_lover,
    toUInt8(t.n90 > 0 AND t.meat90 = 0) AS vegetarian_profile,
    toUInt8(t.spent >= 10000) AS high_value_customer
FROM eligible AS c
LEFT JOIN totals AS t ON t.customer_id = c.customer_id
ORDER BY customer_id
SETTINGS join_use_nulls = 0
"""
"""Every feature of the catalogue, one column each named after it.

``join_use_nulls`` is pinned so that a customer without purchases, or a
purchase without lines, meets zeros rather than ``NULL`` on either kind of
server.
"""


class ClickHouseFeatureEngine:
    """Computes the features in the warehouse; it borrows the client it is given.

    The client is a clickhouse-connect client of a warehouse migrated with
    ``infra/clickhouse``; the engine neither opens nor closes it.
    """

    name = "clickhouse"

    def __init__(self, client: Client) -> None:
        self._client = client

    def compute(self, as_of: datetime) -> list[FeatureRow]:
        wall_clock = as_of.replace(tzinfo=None)
        try:
            result = self._client.query(FEATURES_SQL, parameters={"as_of": wall_clock})
        except ClickHouseError as exc:
            raise InfrastructureError(
                f"ClickHouse could not compute the features as of "
                f"{wall_clock.isoformat()}: {exc}; check PIKCHA_WAREHOUSE and "
                f"that its migrations are applied",
                transient=isinstance(exc, OperationalError),
            ) from exc

        return _rows(result.column_names, result.result_rows)


def _rows(columns: Sequence[str], records: Sequence[Sequence[Any]]) -> list[FeatureRow]:
    if not records:
        # chDB answers an empty result without its column names.
        return []

    positions = [columns.index(name) for name in FEATURE_NAMES]
    id_position = columns.index("customer_id")

    return [
        FeatureRow(
            str(record[id_position]),
            tuple(int(record[position]) for position in positions),
        )
        for record in records
    ]
