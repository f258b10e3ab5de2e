-- dialect: mysql
-- MySQL's multi-table UPDATE … JOIN … SET.
UPDATE shop.products AS p
JOIN shop.price_changes AS pc ON pc.product_id = p.id
SET p.price = pc.new_price
WHERE pc.effective_date <= CURRENT_DATE;
