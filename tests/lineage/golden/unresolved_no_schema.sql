-- dialect: postgres
-- No schema: a column that could come from either joined table is listed as unresolved,
-- and so is a * over a table whose columns nobody knows. Nothing is guessed.
INSERT INTO mart.joined
SELECT o.id, amount, name
FROM raw.orders AS o
JOIN raw.customers AS c ON o.customer_id = c.id;

INSERT INTO mart.copy SELECT * FROM raw.orders;
