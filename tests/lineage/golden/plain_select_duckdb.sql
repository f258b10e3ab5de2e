-- dialect: duckdb
-- A plain SELECT writes nothing: inputs only, no edges.
SELECT u.id, COUNT(*) AS sessions
FROM analytics.users AS u
JOIN analytics.sessions AS s ON s.user_id = u.id
GROUP BY u.id;
