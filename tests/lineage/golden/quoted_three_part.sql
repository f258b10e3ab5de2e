-- dialect: snowflake
-- Three-part names and quoted identifiers: quoted keep their case, unquoted are upper-cased.
INSERT INTO "Analytics"."Public"."Customer Facts" ("Customer Id", "Lifetime Value")
SELECT c."Id", SUM(o.total)
FROM prod_db.sales."Customers" AS c
JOIN prod_db.sales.orders AS o ON o.customer_id = c."Id"
GROUP BY c."Id";
