-- dialect: spark
-- schema: {"warehouse.events_daily": {"user_id": "bigint", "events": "bigint", "ds": "string"}}
-- Hive/Spark INSERT OVERWRITE with a static partition: ds is fixed, the query fills the
-- other columns by position.
INSERT OVERWRITE TABLE warehouse.events_daily PARTITION (ds = '2024-05-01')
SELECT e.user_id, COUNT(1)
FROM raw.events e
WHERE e.event_date = '2024-05-01'
GROUP BY e.user_id;
