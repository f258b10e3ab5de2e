-- dialect: postgres
-- DELETE writes no column; what its WHERE reads decides which rows remain.
DELETE FROM shop.carts AS c
USING shop.customers AS cu
WHERE cu.id = c.customer_id
  AND cu.deleted;
