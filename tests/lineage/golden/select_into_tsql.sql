-- dialect: tsql
-- SELECT … INTO a #temp table, then from it: the temp table is traced through, not reported.
SELECT o.CustomerID, o.Amount, o.OrderDate
INTO #recent
FROM dbo.Orders AS o
WHERE o.OrderDate >= '2024-01-01';

SELECT r.CustomerID, SUM(r.Amount) AS Total
INTO dbo.CustomerTotals
FROM #recent AS r
GROUP BY r.CustomerID;

DROP TABLE #recent;
