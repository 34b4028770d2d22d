-- Raw, clean and rejected layers.
--
-- Every table is a ReplacingMergeTree keyed so that writing the same event
-- again leaves one row: raw and rejected by event_id, clean by the entity id
-- with the log position (`version`) deciding which version wins. Readers use
-- FINAL or the current_* views below, never the bare clean tables.

CREATE TABLE IF NOT EXISTS raw_stores
(
    event_id String,
    event_type LowCardinality(String),
    schema_version UInt16,
    entity_id String,
    occurred_at DateTime64(6, 'UTC'),
    source LowCardinality(String),
    content_hash String,
    mask_key_id LowCardinality(String),
    payload String,
    stream LowCardinality(String),
    partition UInt32,
    offset UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY event_id;

CREATE TABLE IF NOT EXISTS raw_products AS raw_stores;
CREATE TABLE IF NOT EXISTS raw_customers AS raw_stores;
CREATE TABLE IF NOT EXISTS raw_purchases AS raw_stores;

CREATE TABLE IF NOT EXISTS rejected
(
    entity LowCardinality(String),
    event_id String,
    entity_id String,
    content_hash String,
    rule LowCardinality(String),
    field String,
    problem String,
    payload String,
    version UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (entity, event_id);

CREATE TABLE IF NOT EXISTS clean_stores
(
    store_id String,
    store_name String,
    store_network String,
    store_type String,
    city String,
    accepts_online_orders Bool,
    delivery_available Bool,
    event_id String,
    content_hash String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY store_id;

CREATE TABLE IF NOT EXISTS clean_products
(
    product_id String,
    name String,
    category String,
    category_code Nullable(String),
    price Decimal(18, 2),
    is_organic Bool,
    event_id String,
    content_hash String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY product_id;

CREATE TABLE IF NOT EXISTS clean_customers
(
    customer_id String,
    gender String,
    birth_date Nullable(Date32),
    registration_date DateTime64(6, 'UTC'),
    is_loyalty_member Bool,
    city String,
    email_token Nullable(String),
    phone_token Nullable(String),
    loyalty_card_token Nullable(String),
    event_id String,
    content_hash String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY customer_id;

CREATE TABLE IF NOT EXISTS clean_purchases
(
    purchase_id String,
    customer_id String,
    store_id String,
    store_city String,
    purchase_datetime DateTime64(6, 'UTC'),
    total_amount Decimal(18, 2),
    payment_method String,
    is_delivery Bool,
    line_count UInt32,
    quantity_total Decimal(18, 3),
    event_id String,
    content_hash String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY purchase_id;

-- Lines of a purchase carry the version of the purchase they belong to, so a
-- newer version with fewer lines hides the older lines (see the view below).
CREATE TABLE IF NOT EXISTS clean_purchase_items
(
    purchase_id String,
    line_no UInt32,
    product_id String,
    name String,
    category String,
    category_code Nullable(String),
    quantity Decimal(18, 3),
    price_per_unit Decimal(18, 2),
    total_price Decimal(18, 2),
    event_id String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (purchase_id, line_no);

CREATE VIEW IF NOT EXISTS current_stores AS SELECT * FROM clean_stores FINAL;
CREATE VIEW IF NOT EXISTS current_products AS SELECT * FROM clean_products FINAL;
CREATE VIEW IF NOT EXISTS current_customers AS SELECT * FROM clean_customers FINAL;
CREATE VIEW IF NOT EXISTS current_purchases AS SELECT * FROM clean_purchases FINAL;
CREATE VIEW IF NOT EXISTS current_purchase_items AS
SELECT i.*
FROM clean_purchase_items AS i FINAL
INNER JOIN
(
    SELECT purchase_id, version FROM clean_purchases FINAL
) AS p ON i.purchase_id = p.purchase_id AND i.version = p.version;
