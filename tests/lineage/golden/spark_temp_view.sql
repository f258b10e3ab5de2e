-- dialect: spark
-- Spark's session-scoped temp view is an intermediate too.
CREATE OR REPLACE TEMP VIEW clean_orders AS
SELECT order_id, customer_id, TRIM(status) AS status, amount
FROM bronze.orders
WHERE amount IS NOT NULL;

INSERT OVERWRITE TABLE silver.orders_by_status
SELECT status, SUM(amount) AS amount, COUNT(DISTINCT customer_id) AS customers
FROM clean_orders
GROUP BY status;
