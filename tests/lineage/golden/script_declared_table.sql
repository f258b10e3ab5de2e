-- dialect: postgres
-- schema: {"raw.people": {"id": "int", "full_name": "text", "born": "date"}}
-- A table the script declares is known to later statements: INSERT without a column list
-- maps onto its declared columns by position, and SELECT * from it expands.
CREATE TABLE staging.people (person_id int, name text);
INSERT INTO staging.people SELECT id, INITCAP(full_name) FROM raw.people WHERE born < '2000-01-01';
INSERT INTO mart.people SELECT * FROM staging.people;
