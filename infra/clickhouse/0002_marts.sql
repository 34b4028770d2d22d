-- Marts: tables rebuilt whole from the current_* views by the adapter's
-- build_marts (TRUNCATE, then INSERT ... SELECT), and the data-quality mart,
-- which keeps one row per load and raw table.

CREATE TABLE IF NOT EXISTS customer_aggregates
(
    customer_id String,
    purchase_count UInt64,
    total_spent Decimal(18, 2),
    avg_basket Decimal(18, 2),
    first_purchase Nullable(DateTime64(6, 'UTC')),
    last_purchase Nullable(DateTime64(6, 'UTC')),
    distinct_stores UInt64,
    cash_count UInt64,
    card_count UInt64,
    delivery_count UInt64,
    is_new_customer Bool,
    is_loyalty_member Bool,
    city String
)
ENGINE = MergeTree
ORDER BY customer_id;

CREATE TABLE IF NOT EXISTS store_daily
(
    store_id String,
    day Date,
    purchases UInt64,
    revenue Decimal(18, 2)
)
ENGINE = MergeTree
ORDER BY (store_id, day);

CREATE TABLE IF NOT EXISTS product_sales
(
    product_id String,
    name String,
    category_code Nullable(String),
    units Decimal(18, 3),
    revenue Decimal(18, 2)
)
ENGINE = MergeTree
ORDER BY product_id;

CREATE TABLE IF NOT EXISTS city_sales
(
    city String,
    purchases UInt64,
    revenue Decimal(18, 2),
    customers UInt64
)
ENGINE = MergeTree
ORDER BY city;

-- Recording the same load twice leaves one row per table.
CREATE TABLE IF NOT EXISTS data_quality
(
    load_id String,
    checked_at DateTime64(6, 'UTC'),
    table_name LowCardinality(String),
    rows UInt64,
    distinct_rows UInt64,
    duplicates UInt64,
    duplicate_share Float64,
    rejected UInt64,
    rejected_by_rule Map(String, UInt64)
)
ENGINE = ReplacingMergeTree
ORDER BY (load_id, table_name);
