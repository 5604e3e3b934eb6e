{#-
  Examples of visitor ids that link nothing, for the landing quality report's message: up to
  five contacts' visitor ids that match no session (`side` = 'crm_contacts.visitor_id') and the
  five visitors with the most sessions that match no contact (`side` =
  'ga4_sessions.user_pseudo_id'). Side by side they show a format mismatch at a glance, e.g.
  `GA1.2.123456789.1700000000` against `123456789.1700000000`.
-#}
with

contacts as (
    select * from {{ ref('stg_crm_contacts') }}
),

sessions as (
    select * from {{ ref('stg_ga4_sessions') }}
),

unmatched_contacts as (
    select
        'crm_contacts.visitor_id' as side,
        contacts.visitor_id,
        count(*) as occurrences
    from contacts
    where contacts.visitor_id is not null
        and not exists (select 1 from sessions where sessions.visitor_id = contacts.visitor_id)
    group by contacts.visitor_id
),

unmatched_visitors as (
    select
        'ga4_sessions.user_pseudo_id' as side,
        sessions.visitor_id,
        count(*) as occurrences
    from sessions
    where not exists (select 1 from contacts where contacts.visitor_id = sessions.visitor_id)
    group by sessions.visitor_id
),

ranked as (
    select
        *,
        row_number() over (partition by side order by occurrences desc, visitor_id) as example
    from (
        select * from unmatched_contacts
        union all
        select * from unmatched_visitors
    ) as unmatched
)

select side, example, visitor_id, occurrences
from ranked
where example <= 5
