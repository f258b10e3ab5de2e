-- dialect: tsql
-- T-SQL UPDATE naming an alias of its own FROM … JOIN.
UPDATE c
SET c.Segment = CASE WHEN s.Total > 1000 THEN 'gold' ELSE 'standard' END
FROM dbo.Customers AS c
JOIN dbo.CustomerTotals AS s ON s.CustomerID = c.CustomerID;
