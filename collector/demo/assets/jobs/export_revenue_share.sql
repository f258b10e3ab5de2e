-- The last 90 days of revenue, shared with the company's investors.
INSERT INTO public_share.revenue (day, revenue)
SELECT r.day, r.revenue
FROM mart.daily_revenue AS r
WHERE r.day >= CURRENT_DATE - 90;
