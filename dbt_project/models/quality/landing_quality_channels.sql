{#-
  Every distinct channel value the sessions export reported, with the GA4 group it was matched to
  and its number of sessions. `unrecognised` marks values that match no group and were mapped to
  the fallback channel (an empty value counts as unrecognised; GA4's own fallback group does not).
-#}
select
    channel_reported,
    channel,
    channel = '{{ var("fallback_channel") }}'
        and (
            channel_reported is null
            or {{ category_key('channel_reported') }}
                <> {{ category_key("'" ~ var('fallback_channel') ~ "'") }}
        ) as unrecognised,
    count(*) as sessions
from {{ ref('stg_ga4_sessions') }}
group by channel_reported, channel
