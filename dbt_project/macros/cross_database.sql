{#-
  What the models need that DuckDB and PostgreSQL spell differently, as `adapter.dispatch` macros
  (the same pattern dbt's own cross-database macros use). Another engine (Snowflake, BigQuery,
  ...) needs a `<adapter>__` version of each; docs/deploy.md lists them.

  Everything else in the models is SQL both engines accept: `bool_or` through dbt's cross-database
  macro, `case` instead of `filter (where ...)`, `double precision` and
  `timestamp with time zone` as type names.
-#}

{#- The value of `value` on the row that sorts first by `order_by` (a comma-separated list:
    put a unique column last so that ties cannot pick different rows). -#}
{% macro first_by(value, order_by) -%}
    {{ return(adapter.dispatch('first_by', 'leadscore')(value, order_by)) }}
{%- endmacro %}

{% macro default__first_by(value, order_by) -%}
    (array_agg({{ value }} order by {{ order_by }}))[1]
{%- endmacro %}

{% macro duckdb__first_by(value, order_by) -%}
    arg_min({{ value }}, ({{ order_by }}))
{%- endmacro %}

{#- Whole seconds from `start` to `end` (seconds boundaries crossed, as DuckDB's
    date_diff('second', ...) counts them), independent of the session's time zone. -#}
{% macro seconds_between(start, end) -%}
    {{ return(adapter.dispatch('seconds_between', 'leadscore')(start, end)) }}
{%- endmacro %}

{% macro default__seconds_between(start, end) -%}
    (floor(extract(epoch from {{ end }})) - floor(extract(epoch from {{ start }})))
{%- endmacro %}

{% macro duckdb__seconds_between(start, end) -%}
    date_diff('second', {{ start }}, {{ end }})
{%- endmacro %}

{#- `expression` (text) compared byte by byte, whatever the database's collation: DuckDB compares
    text that way already; PostgreSQL sorts by the database's locale (`en_US` puts `a2` after `A1`
    differently than `C` does), so ties broken by a text id would depend on how the database was
    created. -#}
{% macro bytewise(expression) -%}
    {{ return(adapter.dispatch('bytewise', 'leadscore')(expression)) }}
{%- endmacro %}

{% macro default__bytewise(expression) -%}
    {{ expression }} collate "C"
{%- endmacro %}

{% macro duckdb__bytewise(expression) -%}
    {{ expression }}
{%- endmacro %}
