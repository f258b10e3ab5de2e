-- dialect: mysql
-- CASE conditions, IF, COALESCE's fallback, NULLIF: the deciding columns are
-- INDIRECT/CONDITIONAL, the chosen values DIRECT.
INSERT INTO reporting.customer_labels
SELECT c.id,
       CASE WHEN c.lifetime_value > 1000 THEN 'vip' WHEN c.orders = 0 THEN 'prospect' ELSE c.tier END AS label,
       IF(c.opted_out, NULL, c.email) AS contact_email,
       COALESCE(c.nickname, c.first_name) AS greeting_name,
       NULLIF(c.phone, c.fax) AS phone
FROM crm.customers AS c;
