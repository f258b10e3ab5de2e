-- dialect: snowflake
-- schema: {"RAW.ORDERS": {"ORDER_ID": "NUMBER", "CUSTOMER_ID": "NUMBER", "AMOUNT": "NUMBER"}}
-- CREATE TABLE … AS: the query's names. Snowflake resolves unquoted names in upper case.
CREATE OR REPLACE TABLE analytics.customer_ltv AS
SELECT customer_id,
       SUM(amount) AS ltv,
       COUNT(DISTINCT order_id) AS orders,
       APPROX_COUNT_DISTINCT(order_id) AS orders_approx
FROM raw.orders
GROUP BY customer_id
HAVING SUM(amount) > 0
ORDER BY ltv DESC;
