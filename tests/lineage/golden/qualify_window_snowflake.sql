-- dialect: snowflake
-- schema: {"raw.events": {"user_id": "number", "event_type": "varchar", "ts": "timestamp", "value": "number"}}
-- Window PARTITION/ORDER: INDIRECT/WINDOW on the column they shape; QUALIFY filters rows.
CREATE TABLE analytics.latest_event AS
SELECT user_id,
       event_type,
       SUM(value) OVER (PARTITION BY user_id ORDER BY ts) AS running_value,
       ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY ts DESC) AS rn
FROM raw.events
QUALIFY rn = 1;
