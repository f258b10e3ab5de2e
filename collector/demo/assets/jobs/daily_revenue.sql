-- Revenue per day, for the finance dashboard.
INSERT INTO mart.daily_revenue (day, revenue, orders, customers)
SELECT CAST(o.ordered_at AS DATE) AS day,
       SUM(o.amount) AS revenue,
       COUNT(*) AS orders,
       COUNT(DISTINCT o.customer_id) AS customers
FROM staging.orders AS o
WHERE o.status = 'paid'
GROUP BY CAST(o.ordered_at AS DATE);
