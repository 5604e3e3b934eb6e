"""No state outlives the process that should have ended it: MLflow runs end with their true
status, and a killed run is marked failed (docs/operations.md, "A killed run")."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient
from pipeline_runner import new_pipeline

from leadscore_assets.generator import generate, write_landing
from leadscore_assets.settings import EXPERIMENT_NAME

pytestmark = pytest.mark.slow


def _mlflow_runs(settings):
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    return [] if experiment is None else client.search_runs([experiment.experiment_id])


def test_a_run_failing_on_a_landing_file_leaves_no_finished_mlflow_run(tmp_path):
    pipeline = new_pipeline(tmp_path)
    write_landing(generate(2_000, 1), pipeline.settings.landing_dir)
    bad = pipeline.settings.landing_dir / "crm_deals_bad.csv"
    bad.write_text("deal_id,contact_id,stage\n1,1,maybe\n")
    result = pipeline.run()
    assert not result.success
    assert "crm_deals_bad.csv" in pipeline.failure_messages(result)
    statuses = [run.info.status for run in _mlflow_runs(pipeline.settings)]
    assert not statuses, f"no model was trained, yet MLflow has runs {statuses}"
    pipeline.instance.dispose()
