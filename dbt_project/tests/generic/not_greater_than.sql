{#- Fails for every row where `column_name` exceeds `other_column`
    (e.g. engaged_sessions must never exceed sessions). -#}
{% test not_greater_than(model, column_name, other_column) %}
select *
from {{ model }}
where {{ column_name }} > {{ other_column }}
{% endtest %}
