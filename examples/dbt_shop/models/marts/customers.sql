select
    c.customer_id,
    c.first_name || ' ' || c.last_name as full_name,
    c.email,
    c.country,
    count(o.order_id) as order_count,
    coalesce(sum(o.amount), 0) as lifetime_value
from {{ ref('stg_customers') }} as c
left join {{ ref('stg_orders') }} as o
    on o.customer_id = c.customer_id and o.status = 'paid'
group by c.customer_id, c.first_name, c.last_name, c.email, c.country
