select
    country,
    count(*) as customers,
    sum(lifetime_value) as revenue
from {{ ref('customers') }}
group by country
