-- dialect: bigquery
-- schema: {"proj.crm.contacts": {"contact_id": "INT64", "email": "STRING", "phone": "STRING", "country": "STRING"}}
-- CREATE VIEW over a three-part name; hashing masks the value.
CREATE VIEW `proj.analytics.contacts_pseudonymised` AS
SELECT contact_id,
       FARM_FINGERPRINT(email) AS email_key,
       TO_HEX(SHA256(phone)) AS phone_hash,
       country
FROM `proj.crm.contacts`;
