-- dialect: postgres
-- UPDATE … SET … FROM: the WHERE that pairs the tables is a join, the rest a filter.
UPDATE accounts AS a
SET balance = a.balance + t.amount,
    last_transfer_at = t.settled_at
FROM transfers AS t
WHERE t.account_id = a.id
  AND t.state = 'settled';
