select
    cast(deal_id as varchar) as deal_id,
    cast(contact_id as varchar) as contact_id,
    cast(stage as varchar) as stage,
    cast(amount as double precision) as amount,
    cast(closed_at as timestamp with time zone) as closed_at
from {{ source('raw', 'crm_deals') }}
