-- dialect: postgres
-- schema: {"raw.orders": {"id": "int", "customer_id": "int", "amount": "numeric", "fx_rate": "numeric", "status": "text"}}
-- schema: {"raw.customers": {"id": "int", "name": "text", "email": "text"}}
-- INSERT with a column list: mapped by position, whatever the SELECT calls its columns.
INSERT INTO mart.orders_clean (order_id, customer, amount_usd)
SELECT o.id, UPPER(c.name) AS customer_name, o.amount * o.fx_rate
FROM raw.orders AS o
JOIN raw.customers AS c ON o.customer_id = c.id
WHERE o.status <> 'void';
