{#-
  How well the landing exports join, in one row: contacts whose visitor id finds sessions,
  sessions whose visitor is a contact, sessions whose channel ends as the fallback, and matched
  sessions the point-in-time rule leaves out (at or after the lead's `features_as_of`). The
  `landing_quality` asset reports these and checks them against the LEADSCORE_QUALITY_*
  thresholds.
-#}
with

contacts as (
    select * from {{ ref('stg_crm_contacts') }}
),

sessions as (
    select * from {{ ref('stg_ga4_sessions') }}
),

contact_visitors as (
    select distinct visitor_id from contacts where visitor_id is not null
),

-- One row per (contact, session) the visitor id links, with the instant the lead's features stop.
linked as (
    select
        contacts.contact_id,
        sessions.session_started_at,
        leads.features_as_of
    from contacts
    inner join sessions on sessions.visitor_id = contacts.visitor_id
    inner join {{ ref('fct_lead_scoring_features') }} as leads
        on leads.contact_id = contacts.contact_id
),

contact_figures as (
    select
        count(*) as contacts,
        count(case when visitor_id is null then 1 end) as contacts_without_visitor_id
    from contacts
),

link_figures as (
    select
        count(distinct contact_id) as contacts_with_sessions,
        count(*) as linked_sessions,
        count(case when session_started_at >= features_as_of then 1 end)
            as sessions_after_features_as_of
    from linked
),

session_figures as (
    select
        count(*) as sessions,
        count(contact_visitors.visitor_id) as sessions_with_contact,
        count(case when sessions.channel = '{{ var("fallback_channel") }}' then 1 end)
            as sessions_unassigned
    from sessions
    left join contact_visitors on contact_visitors.visitor_id = sessions.visitor_id
)

select
    contact_figures.contacts,
    contact_figures.contacts_without_visitor_id,
    link_figures.contacts_with_sessions,
    session_figures.sessions,
    session_figures.sessions_with_contact,
    session_figures.sessions_unassigned,
    link_figures.linked_sessions,
    link_figures.sessions_after_features_as_of,
    cast(link_figures.contacts_with_sessions as double precision)
        / nullif(contact_figures.contacts, 0)
        as contact_match_rate,
    cast(session_figures.sessions_with_contact as double precision)
        / nullif(session_figures.sessions, 0)
        as session_match_rate,
    cast(session_figures.sessions_unassigned as double precision)
        / nullif(session_figures.sessions, 0)
        as unassigned_share,
    cast(link_figures.sessions_after_features_as_of as double precision)
        / nullif(link_figures.linked_sessions, 0)
        as point_in_time_dropped_share
from contact_figures
cross join link_figures
cross join session_figures
