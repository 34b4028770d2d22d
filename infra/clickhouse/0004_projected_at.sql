-- When each row was written by the projection, so that freshness (an event's
-- occurred_at to its clean row being written) can be measured and watched.
-- Filled by the server at insert; the projection never sends it.

ALTER TABLE raw_stores ADD COLUMN IF NOT EXISTS projected_at DateTime64(3, 'UTC') DEFAULT now64(3, 'UTC');
ALTER TABLE raw_products ADD COLUMN IF NOT EXISTS projected_at DateTime64(3, 'UTC') DEFAULT now64(3, 'UTC');
ALTER TABLE raw_customers ADD COLUMN IF NOT EXISTS projected_at DateTime64(3, 'UTC') DEFAULT now64(3, 'UTC');
ALTER TABLE raw_purchases ADD COLUMN IF NOT EXISTS projected_at DateTime64(3, 'UTC') DEFAULT now64(3, 'UTC');
ALTER TABLE clean_stores ADD COLUMN IF NOT EXISTS projected_at DateTime64(3, 'UTC') DEFAULT now64(3, 'UTC');
ALTER TABLE clean_products ADD COLUMN IF NOT EXISTS projected_at DateTime64(3, 'UTC') DEFAULT now64(3, 'UTC');
ALTER TABLE clean_customers ADD COLUMN IF NOT EXISTS projected_at DateTime64(3, 'UTC') DEFAULT now64(3, 'UTC');
ALTER TABLE clean_purchases ADD COLUMN IF NOT EXISTS projected_at DateTime64(3, 'UTC') DEFAULT now64(3, 'UTC');
