select
    cast(deal_id as bigint) as deal_id,
    cast(contact_id as bigint) as contact_id,
    cast(stage as varchar) as stage,
    cast(amount as double precision) as amount,
    cast(closed_at as timestamp with time zone) as closed_at
from {{ source('raw', 'crm_deals') }}
