"""No state outlives the process that should have ended it: MLflow runs end with their true
status, and a killed run is marked failed (docs/operations.md, "A killed run")."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from integration.processes import ManagedProcess, wait_until
from mlflow import MlflowClient
from pipeline_runner import Pipeline, install_instance_config, new_pipeline

from leadscore_assets.demo.files import write_landing
from leadscore_assets.demo.generator import generate
from leadscore_assets.settings import EXPERIMENT_NAME, PipelineSettings
from leadscore_assets.tracking import ENDED_BY_TAG

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

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


def _wait_for_running_mlflow_run(settings) -> str | None:
    try:
        running = [r for r in _mlflow_runs(settings) if r.info.status == "RUNNING"]
    except Exception:  # the store is created by the run itself; it may not exist yet
        return None
    return running[0].info.run_id if running else None


def test_a_killed_run_is_failed_by_run_monitoring_and_its_mlflow_run_by_the_next_training(
    tmp_path,
):
    """kill -9 of `dagster job execute` mid-training: Dagster's run monitoring (the daemon, with
    the shipped dagster.yaml) fails the run, and the next training ends its MLflow run FAILED."""
    home, data_dir = tmp_path / "dagster", tmp_path / "data"
    # Everything as shipped, except: the run counts as too long at once, and the daemon launches
    # no new runs (the landing sensor and the schedule are on by default).
    install_instance_config(
        home,
        run_monitoring={"max_runtime_seconds": 1, "poll_interval_seconds": 1},
        concurrency={"runs": {"max_concurrent_runs": 0}},
    )
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "LEADSCORE_DATA_DIR": str(data_dir),
        "LEADSCORE_DEMO_MODE": "true",
        "LEADSCORE_SYNTHETIC_LEADS": "3000",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    settings = PipelineSettings(data_dir=data_dir, demo_mode=True, mlflow_tracking_uri=None)
    job = ManagedProcess(
        "dagster job execute",
        [str(BIN / "dagster"), "job", "execute", "-m", "leadscore_assets.definitions"]
        + ["-j", "retrain_job"],
        env=env,
        log_path=tmp_path / "job.log",
        cwd=REPO_ROOT,
    )
    try:
        mlflow_run_id = wait_until(
            lambda: _wait_for_running_mlflow_run(settings),
            timeout=300,
            interval=0.1,
            what="training to start",
            still_running=job,
        )
    finally:
        os.killpg(job.process.pid, signal.SIGKILL)
        job.process.wait(timeout=30)

    instance = DagsterInstance.from_config(str(home))
    [killed] = instance.get_runs()
    assert killed.status == DagsterRunStatus.STARTED, "nothing could record the kill"

    daemon = ManagedProcess(
        "dagster-daemon",
        [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        env=env,
        log_path=tmp_path / "daemon.log",
        cwd=REPO_ROOT,
    )
    try:
        wait_until(
            lambda: True if instance.get_run_by_id(killed.run_id).is_finished else None,
            timeout=180,
            what="run monitoring to fail the killed run",
            still_running=daemon,
        )
    finally:
        daemon.stop(grace_seconds=5)
    assert instance.get_run_by_id(killed.run_id).status == DagsterRunStatus.FAILURE

    client = MlflowClient(tracking_uri=settings.tracking_uri)
    assert client.get_run(mlflow_run_id).info.status == "RUNNING"
    result = Pipeline(settings, instance).run()
    assert result.success
    orphan = client.get_run(mlflow_run_id)
    assert orphan.info.status == "FAILED"
    assert killed.run_id in orphan.data.tags[ENDED_BY_TAG]
    assert {r.info.status for r in _mlflow_runs(settings)} == {"FAILED", "FINISHED"}
    instance.dispose()
