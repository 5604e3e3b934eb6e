select
    cast(deal_id as bigint) as deal_id,
    cast(contact_id as bigint) as contact_id,
    cast(stage as varchar) as stage,
    cast(amount as double) as amount,
    cast(closed_at as timestamptz) as closed_at
from {{ source('raw', 'crm_deals') }}
