select
    cast(deal_id as varchar) as deal_id,
    cast(contact_id as varchar) as contact_id,
    cast(stage as varchar) as stage,
    cast(amount as double) as amount,
    cast(closed_at as timestamptz) as closed_at
from {{ source('raw', 'crm_deals') }}
