select
    cast(user_pseudo_id as varchar) as visitor_id,
    cast(ga_session_id as bigint) as session_id,
    cast(ga_session_number as integer) as session_number,
    cast(session_start as timestamp with time zone) as session_started_at,
    cast(coalesce(engagement_time_seconds, 0) as double precision) as engagement_seconds,
    cast(coalesce(page_views, 0) as integer) as page_views,
    cast(session_default_channel_group as varchar) as channel,
    cast(device_category as varchar) as device,
    cast(country as varchar) as country
from {{ source('raw', 'ga4_sessions') }}
