-- Freshness per minute of writing: how long purchases took from the event's
-- time (set when it was published) to their row in the warehouse. Rows the
-- projection wrote again after a redelivery count once per write.

CREATE VIEW IF NOT EXISTS v_freshness AS
SELECT
    toStartOfMinute(projected_at) AS minute,
    count() AS events,
    quantile(0.5)(dateDiff('millisecond', occurred_at, projected_at)) / 1000
        AS p50_seconds,
    quantile(0.99)(dateDiff('millisecond', occurred_at, projected_at)) / 1000
        AS p99_seconds
FROM raw_purchases
GROUP BY minute
ORDER BY minute;
