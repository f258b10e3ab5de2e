-- dialect: databricks
-- One-way functions mask: hashes, counts. A value that only passes through a CAST is
-- transformed, not masked.
INSERT INTO gold.user_keys
SELECT sha2(u.email, 256) AS email_sha,
       md5(u.phone) AS phone_md5,
       xxhash64(u.device_id) AS device_key,
       CAST(u.id AS STRING) AS user_id,
       count(u.session_id) AS sessions
FROM silver.users AS u
GROUP BY u.email, u.phone, u.device_id, u.id;
