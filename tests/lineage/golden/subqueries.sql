-- dialect: postgres
-- Scalar subquery (its values DIRECT, its correlated filter INDIRECT on that column),
-- EXISTS and IN (filters on the rows).
INSERT INTO mart.customer_summary
SELECT c.id,
       (SELECT MAX(o.created_at) FROM shop.orders AS o WHERE o.customer_id = c.id) AS last_order_at
FROM shop.customers AS c
WHERE EXISTS (SELECT 1 FROM shop.orders AS o2 WHERE o2.customer_id = c.id AND o2.status = 'paid')
  AND c.region_id IN (SELECT r.id FROM shop.regions AS r WHERE r.active);
