"""The SQL that rebuilds each mart from the current_* views.

``{now:String}`` is the build time as ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping

BUILDS: Mapping[str, str] = {
    "customer_aggregates": """
INSERT INTO customer_aggregates
SELECT
    c.customer_id,
    p.purchase_count,
    p.total_spent,
    p.total_spent / greatest(p.purchase_count, 1),
    if(p.purchase_count = 0, NULL, p.first_purchase),
    if(p.purchase_count = 0, NULL, p.last_purchase),
    p.distinct_stores,
    p.cash_count,
    p.card_count,
    p.delivery_count,
    c.registration_date
        >= toDateTime64({now:String}, 6, 'UTC') - INTERVAL 30 DAY,
    c.is_loyalty_member,
    c.city
FROM current_customers AS c
LEFT JOIN
(
    SELECT
        customer_id,
        count() AS purchase_count,
        sum(total_amount) AS total_spent,
        min(purchase_datetime) AS first_purchase,
        max(purchase_datetime) AS last_purchase,
        uniqExact(store_id) AS distinct_stores,
        countIf(payment_method = 'cash') AS cash_count,
        countIf(payment_method = 'card') AS card_count,
        countIf(is_delivery) AS delivery_count
    FROM current_purchases
    GROUP BY customer_id
) AS p ON c.customer_id = p.customer_id
""",
    "store_daily": """
INSERT INTO store_daily
SELECT
    store_id,
    toDate(purchase_datetime) AS day,
    count(),
    sum(total_amount)
FROM current_purchases
GROUP BY store_id, day
""",
    "product_sales": """
INSERT INTO product_sales
SELECT
    i.product_id,
    if(p.product_id = '', i.item_name, p.name),
    if(p.product_id = '', i.item_code, p.category_code),
    i.units,
    i.revenue
FROM
(
    SELECT
        product_id,
        min(name) AS item_name,
        min(category_code) AS item_code,
        sum(quantity) AS units,
        sum(total_price) AS revenue
    FROM current_purchase_items
    GROUP BY product_id
) AS i
LEFT JOIN current_products AS p ON i.product_id = p.product_id
""",
    "city_sales": """
INSERT INTO city_sales
SELECT store_city, count(), sum(total_amount), uniqExact(customer_id)
FROM current_purchases
GROUP BY store_city
""",
}
"""Per mart, the INSERT ... SELECT run after truncating it."""

ORDER: Mapping[str, str] = {
    "customer_aggregates": "customer_id",
    "store_daily": "store_id, day",
    "product_sales": "product_id",
    "city_sales": "city",
    "v_store_sales": "revenue DESC, store_id",
    "v_top_products": "revenue DESC, product_id",
    "v_daily_sales": "day",
    "v_customer_activity": "segment",
    "v_city_sales": "revenue DESC, city",
    "v_duplicate_share": "table_name",
}
"""The order in which :meth:`query` returns the rows of each mart and view."""
