-- dialect: redshift
-- schema: {"raw.page_views": {"user_id": "int", "url": "varchar", "viewed_at": "timestamp"}}
-- schema: {"raw.users": {"id": "int", "email": "varchar", "plan": "varchar"}}
-- A script: a temp table, a work table created and dropped again, and the final table.
-- Neither intermediate is reported; their lineage is traced through to raw.*.
CREATE TEMP TABLE recent_views AS
SELECT user_id, url FROM raw.page_views WHERE viewed_at > DATEADD(day, -7, GETDATE());

CREATE TABLE work.view_counts AS
SELECT user_id, COUNT(*) AS views FROM recent_views GROUP BY user_id;

INSERT INTO mart.engaged_users (user_id, email_hash, views)
SELECT u.id, MD5(u.email), vc.views
FROM work.view_counts AS vc
JOIN raw.users AS u ON u.id = vc.user_id
WHERE vc.views >= 10;

DROP TABLE work.view_counts;
DROP TABLE recent_views;
