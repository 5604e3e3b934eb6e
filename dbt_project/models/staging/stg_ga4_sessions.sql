{#-
  One row per web session, typed. Engagement time and page views stay NULL where the export left
  them empty: unknown is not zero. The reported channel is matched to GA4's default channel
  groups (seed `channel_groups`) by `category_key`, so case, spaces and punctuation do not matter;
  a value that matches no group is the fallback channel, and `channel_reported` keeps what the
  export said (the landing quality report counts those values).
-#}
with

sessions as (
    select * from {{ source('raw', 'ga4_sessions') }}
),

channel_groups as (
    select
        channel,
        {{ category_key('channel') }} as channel_key
    from {{ ref('channel_groups') }}
)

select
    cast(sessions.user_pseudo_id as varchar) as visitor_id,
    cast(sessions.ga_session_id as varchar) as session_id,
    cast(sessions.ga_session_number as integer) as session_number,
    cast(sessions.session_start as timestamp with time zone) as session_started_at,
    cast(sessions.engagement_time_seconds as double precision) as engagement_seconds,
    cast(sessions.page_views as integer) as page_views,
    cast(sessions.session_default_channel_group as varchar) as channel_reported,
    coalesce(channel_groups.channel, '{{ var("fallback_channel") }}') as channel,
    cast(sessions.device_category as varchar) as device,
    cast(sessions.country as varchar) as country
from sessions
left join channel_groups
    on channel_groups.channel_key = {{ category_key('sessions.session_default_channel_group') }}
