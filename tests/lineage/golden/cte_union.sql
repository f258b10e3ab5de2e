-- dialect: postgres
-- CTEs resolved through; UNION ALL maps columns by position, names from the first branch.
WITH web AS (
  SELECT id, email, 'web' AS channel FROM crm.web_signups
), store AS (
  SELECT customer_id, contact_email, 'store' FROM crm.store_signups WHERE contact_email IS NOT NULL
)
INSERT INTO crm.all_signups (id, email, channel)
SELECT id, LOWER(email), channel FROM web
UNION ALL
SELECT customer_id, LOWER(contact_email), 'store' FROM store;
