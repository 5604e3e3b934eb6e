"""How fresh what users consume must be: the published model (and anything scored with it) is
refreshed by the daily retrain, so it fails its freshness policy when a day and a bit have passed
without a new materialisation — a refused candidate, a broken run or a stopped daemon."""

from datetime import timedelta

from dagster import FreshnessPolicy

# The daily schedule plus room for a slow or retried run.
DAILY = FreshnessPolicy.time_window(
    fail_window=timedelta(hours=26), warn_window=timedelta(hours=25)
)
