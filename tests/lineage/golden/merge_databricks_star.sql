-- dialect: databricks
-- schema: {"main.silver.orders": {"id": "bigint", "status": "string", "amount": "decimal"}}
-- schema: {"main.bronze.orders_cdc": {"id": "bigint", "status": "string", "amount": "decimal", "op": "string"}}
-- Databricks MERGE with UPDATE SET * / INSERT *: every source column by name.
MERGE INTO main.silver.orders AS t
USING (SELECT id, status, amount FROM main.bronze.orders_cdc WHERE op <> 'D') AS s
  ON t.id = s.id
WHEN MATCHED THEN UPDATE SET *
WHEN NOT MATCHED THEN INSERT *;
