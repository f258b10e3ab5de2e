-- dialect: snowflake
-- MERGE: the UPDATE SET and INSERT VALUES branches both write the target; ON is a join,
-- a branch's extra condition a filter. The target's own columns may feed it too.
MERGE INTO dim.customer AS t
USING staging.customer AS s
  ON t.id = s.id
WHEN MATCHED AND s.updated_at > t.updated_at THEN
  UPDATE SET name = s.name, email_hash = SHA2(s.email), updated_at = s.updated_at
WHEN NOT MATCHED THEN
  INSERT (id, name, email_hash, updated_at) VALUES (s.id, s.name, SHA2(s.email), s.updated_at);
