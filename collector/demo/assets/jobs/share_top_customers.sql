-- A new job: the best customers, for a partner's public leaderboard.
INSERT INTO public_share.top_customers (email, country, lifetime_value)
SELECT u.email, u.country, SUM(o.amount) AS lifetime_value
FROM crm.users AS u
JOIN staging.orders AS o ON o.customer_id = u.id
WHERE o.status = 'paid'
GROUP BY u.email, u.country
ORDER BY lifetime_value DESC
LIMIT 100;
