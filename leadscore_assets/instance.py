"""The Dagster instance `make ui` and `make materialize` run on: `deploy/dagster.yaml` (run
monitoring, the pipeline's concurrency pool) installed into DAGSTER_HOME, with the pool created."""

from __future__ import annotations

from pathlib import Path

from dagster import DagsterInstance

from leadscore_assets.provenance import REPO_ROOT
from leadscore_assets.settings import PIPELINE_POOL

INSTANCE_SETTINGS = REPO_ROOT / "deploy" / "dagster.yaml"


def install(dagster_home: Path, settings_yaml: str | None = None) -> Path:
    """Write `dagster.yaml` (deploy/dagster.yaml unless `settings_yaml` is given) into
    `dagster_home` and create the pipeline's pool with the instance's default limit.

    Dagster creates a pool from `default_limit` only when its queue first meets a run using it,
    and lets every run already queued at that moment through together: created up front, the very
    first overlapping runs queue too.
    """
    dagster_home.mkdir(parents=True, exist_ok=True)
    target = dagster_home / "dagster.yaml"
    target.write_text(settings_yaml or INSTANCE_SETTINGS.read_text())
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.event_log_storage.initialize_concurrency_limit_to_default(PIPELINE_POOL)
    return target
