{#-
  CRM contacts, typed. The optional contact attributes (var `contact_attributes`, rendered from
  the input fields of leadscore_core/features.py) are copied as the CRM wrote them, trimmed; an
  empty value is NULL (unknown).
-#}
select
    cast(contact_id as varchar) as contact_id,
    cast(email as varchar) as email,
    cast(visitor_id as varchar) as visitor_id,
    cast(created_at as timestamp with time zone) as created_at
    {%- for attribute in var('contact_attributes') %},
    {% if attribute.data_type == 'varchar' -%}
    nullif(trim(cast({{ attribute.name }} as varchar)), '')
    {%- else -%}
    cast({{ attribute.name }} as {{ attribute.data_type }})
    {%- endif %} as {{ attribute.name }}
    {%- endfor %}
from {{ source('raw', 'crm_contacts') }}
