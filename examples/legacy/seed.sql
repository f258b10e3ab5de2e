-- The source tables the legacy jobs read (run once: psql "$SHOP_DATABASE_URL" -f seed.sql).
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS mart;
DROP TABLE IF EXISTS raw.orders;
CREATE TABLE raw.orders (
    id integer PRIMARY KEY,
    customer_id integer NOT NULL,
    ordered_at date NOT NULL,
    status text NOT NULL,
    amount numeric(10, 2) NOT NULL
);
INSERT INTO raw.orders VALUES
    (101, 1, '2024-05-01', 'paid', 120.00),
    (102, 1, '2024-05-01', 'paid', 80.50),
    (103, 2, '2024-05-02', 'refunded', 42.00),
    (104, 3, '2024-05-02', 'paid', 310.25),
    (105, 5, '2024-05-03', 'paid', 15.00),
    (106, 5, '2024-05-03', 'pending', 99.99);
CREATE TABLE IF NOT EXISTS mart.daily_revenue (day date, orders integer, revenue numeric(12, 2));
