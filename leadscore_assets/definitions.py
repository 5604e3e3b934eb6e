"""The one entry point, for `dagster dev -w workspace.yaml` and
`dagster ... -m leadscore_assets.definitions`."""

from __future__ import annotations

from dagster import Definitions, in_process_executor
from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource

from leadscore_assets.assets.ingestion import landing_files, raw_landing_tables
from leadscore_assets.assets.ml import (
    lead_scoring_features_csv,
    lead_scoring_model,
    promotion_gate,
    published_model,
)
from leadscore_assets.assets.warehouse import leadscore_dbt_models
from leadscore_assets.automation import landing_sensor, retrain_job, retrain_schedule
from leadscore_assets.project import dbt_project
from leadscore_assets.settings import PipelineSettings


def build_definitions(settings: PipelineSettings | None = None) -> Definitions:
    """Definitions bound to one data directory (tests build their own on a temp dir)."""
    settings = settings or PipelineSettings()
    return Definitions(
        assets=[
            landing_files,
            raw_landing_tables,
            leadscore_dbt_models,
            lead_scoring_features_csv,
            lead_scoring_model,
            published_model,
        ],
        asset_checks=[promotion_gate],
        jobs=[retrain_job],
        schedules=[retrain_schedule(settings)],
        sensors=[landing_sensor(settings)],
        resources={
            "settings": settings,
            "dbt": DbtCliResource(project_dir=dbt_project),
            "duckdb": DuckDBResource(database=str(settings.warehouse_path)),
        },
        # Steps share one process: on a small machine, a subprocess per step (the default)
        # costs more start-up time than the steps themselves.
        executor=in_process_executor,
    )


defs = build_definitions()
