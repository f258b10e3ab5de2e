-- dialect: mysql
-- No column list and no target schema: the SELECT's names. One source, so unqualified
-- columns belong to it even without a schema.
INSERT INTO reporting.signups
SELECT DATE(created_at) AS signup_day, country, COUNT(*) AS signups
FROM app.users
WHERE deleted_at IS NULL
GROUP BY DATE(created_at), country;
