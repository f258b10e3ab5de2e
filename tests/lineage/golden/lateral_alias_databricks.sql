-- dialect: databricks
-- A projection using an alias defined earlier in the same SELECT (lateral alias).
CREATE TABLE gold.order_margins AS
SELECT o.order_id,
       o.revenue - o.cost AS margin,
       margin / o.revenue AS margin_pct
FROM silver.orders AS o;
