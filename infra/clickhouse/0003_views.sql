-- Views that dashboard panels read. Sales views read the marts, so they show
-- the state of the last build_marts; a store unknown to the clean layer shows
-- an empty name and city (join_use_nulls = 0 is pinned by the adapter).

CREATE VIEW IF NOT EXISTS v_store_sales AS
SELECT
    d.store_id AS store_id,
    s.store_name AS store_name,
    s.city AS city,
    d.purchases AS purchases,
    d.revenue AS revenue
FROM
(
    SELECT store_id, sum(purchases) AS purchases, sum(revenue) AS revenue
    FROM store_daily
    GROUP BY store_id
) AS d
LEFT JOIN current_stores AS s ON d.store_id = s.store_id
ORDER BY revenue DESC, store_id;

CREATE VIEW IF NOT EXISTS v_top_products AS
SELECT product_id, name, units, revenue
FROM product_sales
ORDER BY revenue DESC, product_id
LIMIT 10;

CREATE VIEW IF NOT EXISTS v_daily_sales AS
SELECT day, sum(purchases) AS purchases, sum(revenue) AS revenue
FROM store_daily
GROUP BY day
ORDER BY day;

-- Segments overlap: active and inactive split all customers (active = a
-- purchase within 30 days of the latest purchase of anyone), while new
-- (registered within 30 days of the build) and loyal (loyalty members) are
-- counted among all customers independently.
CREATE VIEW IF NOT EXISTS v_customer_activity AS
SELECT segment, customers
FROM
(
    SELECT
        countIf(is_new_customer) AS n_new,
        countIf(active) AS n_active,
        countIf(NOT active) AS n_inactive,
        countIf(is_loyalty_member) AS n_loyal
    FROM
    (
        SELECT
            is_new_customer,
            is_loyalty_member,
            ifNull(
                last_purchase >= (
                    SELECT max(last_purchase) FROM customer_aggregates
                ) - INTERVAL 30 DAY,
                false
            ) AS active
        FROM customer_aggregates
    )
)
ARRAY JOIN
    ['active', 'inactive', 'loyal', 'new'] AS segment,
    [n_active, n_inactive, n_loyal, n_new] AS customers
ORDER BY segment;

CREATE VIEW IF NOT EXISTS v_city_sales AS
SELECT city, purchases, revenue, customers
FROM city_sales
ORDER BY revenue DESC, city;

-- The latest load is the one checked last (ties broken by load_id).
CREATE VIEW IF NOT EXISTS v_duplicate_share AS
SELECT table_name, duplicate_share, rows, duplicates
FROM data_quality FINAL
WHERE load_id = (
    SELECT argMax(load_id, (checked_at, load_id)) FROM data_quality FINAL
)
ORDER BY table_name;
