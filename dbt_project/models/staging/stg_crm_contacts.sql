select
    cast(contact_id as bigint) as contact_id,
    cast(email as varchar) as email,
    cast(visitor_id as varchar) as visitor_id,
    cast(created_at as timestamp with time zone) as created_at
from {{ source('raw', 'crm_contacts') }}
