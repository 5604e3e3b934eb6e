{#- The key a channel value is matched by: its ASCII letters and digits, in lower case, so
    "Organic Search", "organic search", "ORGANIC_SEARCH" and "Cross network" / "Cross-network"
    are one GA4 group. The pattern is leadscore_core/features.py's CATEGORY_KEY_PATTERN, passed in
    the dbt vars; the scoring API matches a request's channel by the same rule.
    `regexp_replace(text, pattern, '', 'g')` means the same in DuckDB and PostgreSQL; another
    adapter supplies its own `<adapter>__category_key`. -#}
{% macro category_key(expression) -%}
    {{ return(adapter.dispatch('category_key')(expression)) }}
{%- endmacro %}

{% macro default__category_key(expression) -%}
    lower(regexp_replace({{ expression }}, '{{ var("category_key_pattern") }}', '', 'g'))
{%- endmacro %}
