-- dialect: postgres
-- schema: {"mart.daily_revenue": {"day": "date", "revenue": "numeric", "order_count": "bigint"}}
-- schema: {"raw.orders": {"id": "int", "created_at": "timestamp", "amount": "numeric", "status": "text"}}
-- No column list, target schema known: by position onto the target's columns
-- (the SELECT's own names d, total, n do not matter). Unqualified columns placed by the schema.
INSERT INTO mart.daily_revenue
SELECT CAST(created_at AS DATE) AS d, SUM(amount) AS total, COUNT(id) AS n
FROM raw.orders
WHERE status = 'paid'
GROUP BY 1
ORDER BY 1;
