-- Rebuilds mart.daily_revenue from raw.orders: one row per day of paid orders.
DELETE FROM mart.daily_revenue;
INSERT INTO mart.daily_revenue (day, orders, revenue)
SELECT o.ordered_at, COUNT(o.id), SUM(o.amount)
FROM raw.orders AS o
WHERE o.status = 'paid'
GROUP BY o.ordered_at;
