-- dialect: bigquery
-- UNNEST: the element's value comes from the array column.
CREATE TABLE `proj.mart.order_items` AS
SELECT o.order_id, item.sku, item.qty
FROM `proj.raw.orders` AS o, UNNEST(o.items) AS item;
