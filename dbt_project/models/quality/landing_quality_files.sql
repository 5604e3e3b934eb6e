{#-
  Rows each landing file contributes to the raw tables: after a newer file's rows replaced its
  rows for the same keys (a re-export), and after exact duplicate rows were loaded once.
-#}
{%- set tables = ['ga4_sessions', 'crm_contacts', 'crm_deals'] %}
{%- for table in tables %}
select
    '{{ table }}' as landing_table,
    _source_file as file_name,
    count(*) as rows_loaded
from {{ source('raw', table) }}
group by _source_file
{% if not loop.last %}union all{% endif %}
{%- endfor %}
