"""MLflow wiring: the data directory's store, and training runs that end with their true status.

An MLflow run exists only while a model is being trained: it is started by the training step (not
when a Dagster run starts, so a run that fails on a landing file leaves no MLflow run behind) and
ends FINISHED, FAILED or KILLED with that step. A process killed outright cannot end its own run;
the next training ends such orphans as FAILED once Dagster no longer counts their run as in
progress (docs/operations.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import mlflow
from dagster import DagsterExecutionInterruptedError, DagsterInstance
from mlflow import MlflowClient
from mlflow.entities import Run

from leadscore_assets.settings import EXPERIMENT_NAME, PipelineSettings

DAGSTER_RUN_TAG = "dagster_run_id"
ENDED_BY_TAG = "leadscore.ended_by"
_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def client(settings: PipelineSettings) -> MlflowClient:
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def ensure_experiment(settings: PipelineSettings) -> str:
    """Create the experiment with its artifacts under the data dir (MLflow would otherwise put
    them in the working directory), returning its id."""
    registry = client(settings)
    experiment = registry.get_experiment_by_name(EXPERIMENT_NAME)
    if experiment is not None:
        return experiment.experiment_id
    settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    return registry.create_experiment(EXPERIMENT_NAME, artifact_location=settings.artifact_location)


@contextmanager
def _store(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API (and model registration) at `uri` for the block.

    `mlflow.set_tracking_uri` also exports MLFLOW_TRACKING_URI into this process's environment; it
    is put back afterwards, so settings read later in the same process (another run, another data
    directory) and subprocesses do not mistake it for the user's choice.
    """
    exported = {name: os.environ.get(name) for name in _URI_VARIABLES}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(exported["MLFLOW_TRACKING_URI"])
        mlflow.set_registry_uri(exported["MLFLOW_REGISTRY_URI"])
        for name, value in exported.items():
            if value is None:
                os.environ.pop(name, None)


def end_orphaned_runs(
    settings: PipelineSettings, experiment_id: str, instance: DagsterInstance
) -> list[str]:
    """End as FAILED every MLflow run still RUNNING although its Dagster run has finished: its
    process died before it could say so. Returns their ids. Runs of Dagster runs this instance
    does not know (another deployment sharing the MLflow store) are left alone."""
    registry = client(settings)
    ended = []
    running: list[Run] = registry.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'"
    )
    for run in running:
        dagster_run_id = run.data.tags.get(DAGSTER_RUN_TAG)
        dagster_run = instance.get_run_by_id(dagster_run_id) if dagster_run_id else None
        if dagster_run is None or not dagster_run.is_finished:
            continue
        registry.set_tag(
            run.info.run_id,
            ENDED_BY_TAG,
            f"a later training: Dagster run {dagster_run_id} ended {dagster_run.status.value}",
        )
        registry.set_terminated(run.info.run_id, status="FAILED")
        ended.append(run.info.run_id)
    return ended


@contextmanager
def training_run(
    settings: PipelineSettings,
    *,
    instance: DagsterInstance,
    dagster_run_id: str,
    run_name: str,
    tags: Mapping[str, str],
) -> Iterator[mlflow.ActiveRun]:
    """An MLflow run for one training, ended with its true status: FINISHED when the block
    completes, KILLED when the Dagster run is terminated, FAILED on any other error."""
    experiment_id = ensure_experiment(settings)
    end_orphaned_runs(settings, experiment_id, instance)
    with _store(settings.tracking_uri):
        run = mlflow.start_run(
            experiment_id=experiment_id,
            run_name=run_name,
            tags={DAGSTER_RUN_TAG: dagster_run_id, **tags},
        )
        try:
            yield run
        except (KeyboardInterrupt, DagsterExecutionInterruptedError):
            mlflow.end_run(status="KILLED")
            raise
        except BaseException:
            mlflow.end_run(status="FAILED")
            raise
        mlflow.end_run(status="FINISHED")
