"""How fresh what users consume must be. The published model and the lead scores are refreshed by
the daily retrain (the lead scores also by new landing data even when no model is published), so
each fails its freshness policy when a day and a bit have passed without a new materialisation —
for the model a refused candidate, for both a broken run or a stopped daemon."""

from datetime import timedelta

from dagster import FreshnessPolicy

# The daily schedule plus room for a slow or retried run.
DAILY = FreshnessPolicy.time_window(
    fail_window=timedelta(hours=26), warn_window=timedelta(hours=25)
)
