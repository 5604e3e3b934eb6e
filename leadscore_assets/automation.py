"""Retraining without clicks: `retrain_job`, a daily schedule and a sensor on landing/."""

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleDefinition,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    sensor,
)

from leadscore_assets import landing
from leadscore_assets.assets.ingestion import LOADED_DIGEST_KEY, RAW_TABLE_KEYS
from leadscore_assets.settings import PipelineSettings

retrain_job = define_asset_job(
    "retrain_job",
    selection=AssetSelection.all(),
    description="The whole chain: landing files -> raw tables -> dbt mart -> CSV -> model -> "
    "promotion gate -> published model.",
)


def retrain_schedule(settings: PipelineSettings) -> ScheduleDefinition:
    return ScheduleDefinition(
        name="daily_retrain",
        job=retrain_job,
        cron_schedule=settings.retrain_cron,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
        description="Retrain on the current landing data every day (LEADSCORE_RETRAIN_CRON).",
    )


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


def landing_sensor(settings: PipelineSettings) -> SensorDefinition:
    @sensor(
        name="new_landing_files",
        job=retrain_job,
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
