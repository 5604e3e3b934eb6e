"""MLflow wiring: the dagster-mlflow resource, pointed at the data directory's store."""

from __future__ import annotations

import os

from dagster import ResourceDefinition, resource
from dagster_mlflow import mlflow_tracking
from mlflow import MlflowClient

from leadscore_assets.settings import EXPERIMENT_NAME, PipelineSettings

TRACKING_URI_VARIABLE = "MLFLOW_TRACKING_URI"


def ensure_experiment(settings: PipelineSettings) -> str:
    """Create the experiment with its artifacts under the data dir (MLflow would otherwise put
    them in the working directory), returning its id."""
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    if experiment is not None:
        return experiment.experiment_id
    settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    return client.create_experiment(EXPERIMENT_NAME, artifact_location=settings.artifact_location)


def mlflow_tracking_resource(settings: PipelineSettings) -> ResourceDefinition:
    """dagster-mlflow's `mlflow_tracking`, with the experiment created first.

    The resource calls `mlflow.set_tracking_uri`, which also exports MLFLOW_TRACKING_URI into this
    process's environment; it is put back afterwards, so that settings read later in the same
    process (another run, another data directory) do not mistake it for the user's choice.
    """

    @resource(config_schema=mlflow_tracking.config_schema, description=mlflow_tracking.description)
    def tracking(context):
        ensure_experiment(settings)
        exported_before = os.environ.get(TRACKING_URI_VARIABLE)
        try:
            yield from mlflow_tracking.resource_fn(context)
        finally:
            if exported_before is None:
                os.environ.pop(TRACKING_URI_VARIABLE, None)
            else:
                os.environ[TRACKING_URI_VARIABLE] = exported_before

    return tracking.configured(
        {"experiment_name": EXPERIMENT_NAME, "mlflow_tracking_uri": settings.tracking_uri}
    )


def client(settings: PipelineSettings) -> MlflowClient:
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
