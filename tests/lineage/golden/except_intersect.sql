-- dialect: postgres
-- EXCEPT and INTERSECT return the first branch's values; the other branches only decide
-- which of its rows remain.
INSERT INTO crm.churned (customer_id, region)
SELECT customer_id, region FROM crm.customers_2023
EXCEPT
SELECT customer_id, region FROM crm.customers_2024
INTERSECT
SELECT id, home_region FROM crm.contactable;
