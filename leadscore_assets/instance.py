"""The Dagster instance `make ui` and `make materialize` run on: `deploy/dagster.yaml` (run
monitoring, the pipeline's concurrency pool) installed into DAGSTER_HOME, with the pool created, and
its storage in SQLite files there (the default) or in PostgreSQL
(`deploy/dagster_storage_postgres.yaml`, LEADSCORE_DAGSTER_STORAGE=postgres)."""

from __future__ import annotations

from pathlib import Path

from dagster import DagsterInstance

from leadscore_assets.provenance import REPO_ROOT
from leadscore_assets.settings import PIPELINE_POOL, DagsterStorage

INSTANCE_SETTINGS = REPO_ROOT / "deploy" / "dagster.yaml"
POSTGRES_STORAGE_SETTINGS = REPO_ROOT / "deploy" / "dagster_storage_postgres.yaml"


def install(
    dagster_home: Path, settings_yaml: str | None = None, storage: DagsterStorage = "sqlite"
) -> Path:
    """Write `dagster.yaml` (deploy/dagster.yaml unless `settings_yaml` is given, with the
    PostgreSQL storage section appended for `storage="postgres"`) into `dagster_home` and create
    the pipeline's pool with the instance's default limit.

    Dagster creates a pool from `default_limit` only when its queue first meets a run using it,
    and lets every run already queued at that moment through together: created up front, the very
    first overlapping runs queue too.
    """
    dagster_home.mkdir(parents=True, exist_ok=True)
    text = settings_yaml or INSTANCE_SETTINGS.read_text()
    if storage == "postgres":
        text = f"{text.rstrip()}\n\n{POSTGRES_STORAGE_SETTINGS.read_text()}"
    target = dagster_home / "dagster.yaml"
    target.write_text(text)
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.event_log_storage.initialize_concurrency_limit_to_default(PIPELINE_POOL)
    return target
