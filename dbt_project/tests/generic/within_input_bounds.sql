{#- Fails for every row where a numeric input field is below 0 or above its maximum: the bounds the
    scoring API enforces on requests (leadscore_core/features.py, passed in the dbt vars), so the
    model is never trained on a value the API would refuse. -#}
{% test within_input_bounds(model, column_name) %}
{%- set bounds = var('input_field_bounds')[column_name] -%}
select {{ column_name }}
from {{ model }}
where {{ column_name }} < 0 or {{ column_name }} > {{ bounds['max'] }}
{% endtest %}
