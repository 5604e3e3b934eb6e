{#-
  One row per CRM contact: behavioural features, the contact's CRM attributes and the outcome
  label.

  Point in time: a lead's features only count sessions that started before its outcome
  (the close of its first won deal; for leads with only lost deals, the last loss) or, while the
  lead has no outcome yet, before the scoring cut-off. Activity after conversion (customers logging
  in, onboarding) would leak the label into the features.

  Unknown is not zero: where no counted session has an engagement time, `engaged_sessions` and
  `total_engagement_seconds` are NULL, and where none has page views, `page_views` is; where some
  have them, they count or sum the sessions that have them. A lead without counted sessions has
  none of either (0).
-#}
{%- set cutoff = var('scoring_cutoff') -%}
with

contacts as (
    select * from {{ ref('stg_crm_contacts') }}
),

deals as (
    select * from {{ ref('stg_crm_deals') }}
),

outcomes as (
    select
        contact_id,
        {{ dbt.bool_or("stage = '" ~ var("deal_stage_won") ~ "'") }} as has_won_deal,
        {{ dbt.bool_or("stage = '" ~ var("deal_stage_open") ~ "'") }} as has_open_deal,
        {{ dbt.bool_or("stage = '" ~ var("deal_stage_lost") ~ "'") }} as has_lost_deal,
        min(case when stage = '{{ var("deal_stage_won") }}' then closed_at end) as first_won_at,
        max(case when stage = '{{ var("deal_stage_lost") }}' then closed_at end) as last_lost_at
    from deals
    group by contact_id
),

leads as (
    select
        contacts.contact_id,
        contacts.email,
        contacts.visitor_id,
        contacts.created_at as lead_created_at,
        {%- for attribute in var('contact_attributes') %}
        contacts.{{ attribute.name }},
        {%- endfor %}
        case
            when outcomes.has_won_deal then 'won'
            when outcomes.has_open_deal then 'open'
            when outcomes.has_lost_deal then 'lost'
            else 'no_deal'
        end as outcome,
        case
            when outcomes.has_won_deal then outcomes.first_won_at
            when outcomes.has_open_deal then null
            else outcomes.last_lost_at
        end as outcome_at
    from contacts
    left join outcomes on outcomes.contact_id = contacts.contact_id
),

leads_as_of as (
    select
        *,
        coalesce(
            outcome_at,
            {% if cutoff %}cast('{{ cutoff }}' as timestamp with time zone){% else %}current_timestamp{% endif %}
        ) as features_as_of
    from leads
),

counted_sessions as (
    select
        leads_as_of.contact_id,
        sessions.session_id,
        sessions.session_number,
        sessions.session_started_at,
        sessions.engagement_seconds,
        sessions.page_views,
        sessions.channel
    from leads_as_of
    inner join {{ ref('stg_ga4_sessions') }} as sessions
        on sessions.visitor_id = leads_as_of.visitor_id
    where sessions.session_started_at < leads_as_of.features_as_of
),

behaviour as (
    select
        contact_id,
        count(*) as sessions,
        case when count(engagement_seconds) > 0 then count(
            case when engagement_seconds > {{ var('engaged_session_seconds') }} then 1 end
        ) end as engaged_sessions,
        sum(page_views) as page_views,
        max(session_number) = 1 as is_first_visit,
        -- The first session's channel (ties on the start time go to the lower session id, compared
        -- byte by byte on every engine).
        {{ first_by('channel', 'session_started_at, ' ~ bytewise('session_id')) }} as channel,
        -- Summed exactly (as a decimal), so the total does not depend on the order the engine's
        -- threads add the sessions in: the same inputs give the same bytes downstream.
        sum(cast(engagement_seconds as decimal(18, 6))) as total_engagement_seconds,
        -- A double divided by a double: the same correctly rounded value on every engine.
        cast({{ seconds_between('min(session_started_at)', 'max(session_started_at)') }}
            as double precision) / 86400.0 as days_active_span,
        count(distinct channel) as distinct_channels
    from counted_sessions
    group by contact_id
)

select
    leads_as_of.contact_id,
    leads_as_of.email,
    leads_as_of.lead_created_at,
    cast(coalesce(behaviour.sessions, 0) as integer) as sessions,
    cast(
        case when behaviour.contact_id is null then 0 else behaviour.engaged_sessions end
        as integer
    ) as engaged_sessions,
    cast(
        case when behaviour.contact_id is null then 0 else behaviour.page_views end as integer
    ) as page_views,
    cast(coalesce(behaviour.channel, '{{ var("fallback_channel") }}') as varchar) as channel,
    coalesce(behaviour.is_first_visit, false) as is_first_visit,
    cast(
        case when behaviour.contact_id is null then 0 else behaviour.total_engagement_seconds end
        as double precision
    ) as total_engagement_seconds,
    cast(coalesce(behaviour.days_active_span, 0) as double precision) as days_active_span,
    cast(coalesce(behaviour.distinct_channels, 0) as integer) as distinct_channels,
    {%- for attribute in var('contact_attributes') %}
    leads_as_of.{{ attribute.name }},
    {%- endfor %}
    cast(leads_as_of.outcome = 'won' as integer) as is_won,
    cast(leads_as_of.outcome as varchar) as outcome,
    leads_as_of.outcome_at,
    leads_as_of.features_as_of
from leads_as_of
left join behaviour on behaviour.contact_id = leads_as_of.contact_id
