-- Orders and spend per customer, for the CRM team.
DELETE FROM mart.customer_orders;
INSERT INTO mart.customer_orders (customer_id, orders, spent, last_order_at)
SELECT o.customer_id, COUNT(*), SUM(o.amount), MAX(o.ordered_at)
FROM staging.orders AS o
WHERE o.status = 'paid'
GROUP BY o.customer_id;
