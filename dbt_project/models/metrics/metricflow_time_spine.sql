{{ config(materialized='table') }}
-- Daily time spine MetricFlow needs to aggregate metrics over time (2025 to 2029), built with
-- dbt's cross-database date_spine.
select cast(date_day as date) as date_day
from (
    {{ dbt.date_spine('day', "cast('2025-01-01' as date)", "cast('2029-12-31' as date)") }}
) as days
