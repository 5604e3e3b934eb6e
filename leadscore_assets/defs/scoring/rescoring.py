"""The automation sensor that re-scores the open leads when no retrain run did (assets.py says
when). Its own module: a module with a `@dg.definitions` function contributes only that."""

import dagster as dg

from leadscore_assets.defs.scoring.assets import GROUP
from leadscore_assets.settings import current

RESCORING_SENSOR = "rescore_open_leads"


@dg.definitions
def rescoring() -> dg.Definitions:
    return dg.Definitions(
        sensors=[
            dg.AutomationConditionSensorDefinition(
                RESCORING_SENSOR,
                target=dg.AssetSelection.groups(GROUP),
                default_status=dg.DefaultSensorStatus.RUNNING,
                minimum_interval_seconds=current().sensor_min_interval_seconds,
                description="Re-score the open leads (and write them back) when the mart or the "
                "published model changed without a scoring, e.g. new landing data whose "
                "candidate model the promotion gate refused.",
            )
        ]
    )
