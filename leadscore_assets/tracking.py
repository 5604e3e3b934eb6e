"""MLflow wiring: the dagster-mlflow resource, pointed at the data directory's store."""

from __future__ import annotations

from dagster import ResourceDefinition
from dagster_mlflow import mlflow_tracking
from mlflow import MlflowClient

from leadscore_assets.settings import EXPERIMENT_NAME, PipelineSettings


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
    """dagster-mlflow's `mlflow_tracking`, with the experiment created first."""

    def init(context):
        ensure_experiment(settings)
        return mlflow_tracking.resource_fn(context)

    return ResourceDefinition(
        resource_fn=init,
        config_schema=mlflow_tracking.config_schema,
        description=mlflow_tracking.description,
    ).configured({"experiment_name": EXPERIMENT_NAME, "mlflow_tracking_uri": settings.tracking_uri})


def client(settings: PipelineSettings) -> MlflowClient:
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
