-- dialect: postgres
-- CREATE VIEW with its own column names: by position.
CREATE VIEW sales.v_top_products (product, units) AS
SELECT p.name, SUM(s.quantity)
FROM sales.items AS s
JOIN sales.products AS p ON p.id = s.product_id
GROUP BY p.name;
