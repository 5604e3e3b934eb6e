"""Retraining without clicks: `retrain_job`, a daily schedule and a sensor on landing/.

Why a schedule and a sensor, not declarative automation (an observable landing source with
`AutomationCondition.eager()` downstream and `on_cron` for the daily retrain): quarantining a bad
file changes the landing folder back, and `eager` treats that as new data, so a rejected file would
cost a second run that retrains on unchanged data. The sensor compares with what was last loaded
successfully instead, and says in its skip reasons why it did not start a run (docs/operations.md).
"""

import dagster as dg
from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleDefinition,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    sensor,
)

from leadscore_assets.defs.ingestion import folder as landing
from leadscore_assets.defs.ingestion.assets import LOADED_DIGEST_KEY, RAW_TABLE_KEYS
from leadscore_assets.settings import PipelineSettings, current

RETRAIN_JOB = "retrain_job"


def _last_loaded_digest(context: SensorEvaluationContext) -> str | None:
    """The landing files of the last successful load into `raw.*`.

    Not the `landing_files` asset's digest: that is recorded before the files are checked, so a
    rejected file's digest would count as loaded, and once the file is quarantined the folder
    would look changed and start a second run on data that is already loaded.
    """
    # The three raw tables are loaded together; the contacts (the leads) stand for them.
    event = context.instance.get_latest_materialization_event(RAW_TABLE_KEYS["crm_contacts"])
    if event is None or event.asset_materialization is None:
        return None
    digest = event.asset_materialization.metadata.get(LOADED_DIGEST_KEY)
    return digest.value if digest is not None else None


def landing_sensor(settings: PipelineSettings) -> dg.SensorDefinition:
    @sensor(
        name="new_landing_files",
        job_name=RETRAIN_JOB,
        minimum_interval_seconds=settings.sensor_min_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description="Retrain when files in landing/ are added or changed (name, size, mtime). "
        "Partial uploads (.part, .tmp, ...) are ignored.",
    )
    def new_landing_files(context: SensorEvaluationContext):
        files = landing.discover(settings.landing_dir)
        if not files:
            return SkipReason(f"no data files in {settings.landing_dir}")
        missing = landing.tables_without_files(files)
        if missing:
            return SkipReason(f"waiting for a file for table(s) {', '.join(missing)}")
        digest = landing.files_digest(files)
        if digest == context.cursor:
            return SkipReason("landing files unchanged since the last request")
        context.update_cursor(digest)
        if digest == _last_loaded_digest(context):
            return SkipReason("landing files are the ones already loaded")
        return RunRequest(
            run_key=f"landing-{digest[:16]}",
            tags={"leadscore/trigger": "new_landing_files", "leadscore/files_digest": digest},
        )

    return new_landing_files


@dg.definitions
def retraining() -> dg.Definitions:
    settings = current()
    return dg.Definitions(
        jobs=[
            define_asset_job(
                RETRAIN_JOB,
                selection=AssetSelection.all(),
                description="The whole chain: landing files -> raw tables -> dbt mart -> CSV -> "
                "model -> promotion gate -> published model -> lead scores -> CRM write-back.",
            )
        ],
        schedules=[
            ScheduleDefinition(
                name="daily_retrain",
                job_name=RETRAIN_JOB,
                cron_schedule=settings.retrain_cron,
                execution_timezone="UTC",
                default_status=DefaultScheduleStatus.RUNNING,
                description="Retrain on the current landing data every day "
                "(LEADSCORE_RETRAIN_CRON).",
            )
        ],
        sensors=[landing_sensor(settings)],
    )
