-- dialect: duckdb
-- schema: {"raw.orders": {"order_id": "int", "customer_id": "int", "amount": "double"}}
-- schema: {"raw.customers": {"customer_id": "int", "name": "varchar"}}
-- * expanded from the schema; JOIN … USING: the shared key is a COALESCE of both sides.
CREATE TABLE mart.orders_wide AS
SELECT *
FROM raw.orders
JOIN raw.customers USING (customer_id);
