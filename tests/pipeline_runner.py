"""Run the real Dagster job in-process on a temporary data directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from dagster import DagsterInstance, ExecuteInProcessResult

from leadscore_assets.definitions import build_definitions
from leadscore_assets.instance import INSTANCE_SETTINGS, install
from leadscore_assets.settings import PipelineSettings

SMALL_DATASET_LEADS = 6_000
# The tests train many models: a small search keeps them fast and still exercises it.
TEST_TUNING_TRIALS = 4


@dataclass
class Pipeline:
    """One data directory with its own Dagster instance, MLflow store and warehouse."""

    settings: PipelineSettings
    instance: DagsterInstance

    @property
    def definitions(self):
        return build_definitions(self.settings)

    def run(self, run_config: dict[str, Any] | None = None) -> ExecuteInProcessResult:
        job = self.definitions.resolve_job_def("retrain_job")
        return job.execute_in_process(
            instance=self.instance, run_config=run_config or {}, raise_on_error=False
        )

    def check_results(self, result: ExecuteInProcessResult) -> dict[str, Any]:
        """Asset-check evaluations of a run, by check name."""
        return {
            event.event_specific_data.check_name: event.event_specific_data
            for event in result.all_events
            if event.event_type_value == "ASSET_CHECK_EVALUATION"
        }

    def materialization(self, result: ExecuteInProcessResult, key: str):
        """The run's materialisation of one asset (by its user string, e.g. "raw/crm_deals")."""
        return next(
            event.materialization
            for event in result.get_asset_materialization_events()
            if event.asset_key.to_user_string() == key
        )

    def failure_messages(self, result: ExecuteInProcessResult) -> str:
        return "\n".join(
            str(event.event_specific_data.error.message)
            for event in result.all_events
            if event.event_type_value == "STEP_FAILURE"
        )


def new_pipeline(data_dir: Path, **overrides: Any) -> Pipeline:
    """A pipeline on `data_dir`, in demo mode unless `demo_mode=False` is passed."""
    settings = PipelineSettings(
        data_dir=data_dir,
        demo_mode=overrides.pop("demo_mode", True),
        synthetic_leads=overrides.pop("synthetic_leads", SMALL_DATASET_LEADS),
        tuning_trials=overrides.pop("tuning_trials", TEST_TUNING_TRIALS),
        mlflow_tracking_uri=None,
        **overrides,
    )
    (data_dir / "dagster").mkdir(parents=True, exist_ok=True)
    instance = DagsterInstance.local_temp(
        str(data_dir / "dagster"), overrides={"telemetry": {"enabled": False}}
    )
    return Pipeline(settings, instance)


def training_run_config(**fields: Any) -> dict[str, Any]:
    return {"ops": {"lead_scoring_model": {"config": fields}}}


def install_instance_config(
    dagster_home: Path, storage: str = "sqlite", **overrides: dict[str, Any]
) -> Path:
    """The shipped deploy/dagster.yaml in `dagster_home`, installed as `make ui` installs it;
    `overrides` replace keys of its top-level sections, e.g. run_monitoring={...}."""
    config = yaml.safe_load(INSTANCE_SETTINGS.read_text())
    for section, values in overrides.items():
        config[section] = {**config.get(section, {}), **values}
    return install(dagster_home, yaml.safe_dump(config), storage=storage)
