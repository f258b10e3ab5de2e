-- dialect: postgres
-- No schema, a correlated subquery with an unqualified column: sqlglot declines to
-- qualify such queries; the column still belongs to the subquery's only table.
INSERT INTO mart.latest_price
SELECT p.sku,
       (SELECT MAX(price) FROM pricing.history AS h WHERE h.sku = p.sku) AS max_price
FROM catalog.products AS p;
