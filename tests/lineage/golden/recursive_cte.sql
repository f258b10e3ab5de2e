-- dialect: postgres
-- A recursive CTE: the anchor's sources, and the recursive part's own join.
INSERT INTO org.reporting_lines (employee_id, manager_id, depth)
WITH RECURSIVE chain AS (
  SELECT e.id AS employee_id, e.manager_id, 1 AS depth FROM org.employees AS e
  UNION ALL
  SELECT c.employee_id, m.manager_id, c.depth + 1
  FROM chain AS c JOIN org.employees AS m ON m.id = c.manager_id
)
SELECT employee_id, manager_id, depth FROM chain;
