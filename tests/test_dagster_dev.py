"""`dagster dev -w workspace.yaml` serves the whole graph with the schedule and sensor running."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest
from integration.processes import ManagedProcess, free_port, wait_until
from pipeline_runner import install_instance_config

REPO_ROOT = Path(__file__).resolve().parents[1]

QUERY = """
{
  assetNodes { assetKey { path } }
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes {
        schedules { name scheduleState { status } }
        sensors { name sensorState { status } }
      }
    }
  }
}
"""

pytestmark = pytest.mark.slow


def _graphql(base: str) -> dict | None:
    try:
        response = httpx.post(f"{base}/graphql", json={"query": QUERY}, timeout=10)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    data = response.json().get("data") or {}
    return data if data.get("assetNodes") else None


def test_dagster_dev_shows_the_asset_graph_schedule_and_sensor(tmp_path):
    port = free_port()
    install_instance_config(tmp_path / "dagster")
    env = {
        **os.environ,
        "LEADSCORE_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
    }
    # dagster dev may ignore SIGTERM: ManagedProcess.stop() ends the whole group with SIGKILL.
    process = ManagedProcess(
        "dagster dev",
        [
            str(Path(sys.executable).parent / "dagster"),
            "dev",
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=env,
        log_path=tmp_path / "dagster-dev.log",
        cwd=REPO_ROOT,
    )
    try:
        data = wait_until(
            lambda: _graphql(f"http://127.0.0.1:{port}"),
            timeout=180,
            what="dagster dev to serve the asset graph",
            interval=1,
            still_running=process,
        )
    finally:
        process.stop(grace_seconds=5)
    keys = {"/".join(node["assetKey"]["path"]) for node in data["assetNodes"]}
    assert {"landing_files", "marts/fct_lead_scoring_features", "published_model"} <= keys
    repository = data["repositoriesOrError"]["nodes"][0]
    schedules = {s["name"]: s["scheduleState"]["status"] for s in repository["schedules"]}
    sensors = {s["name"]: s["sensorState"]["status"] for s in repository["sensors"]}
    assert schedules == {"daily_retrain": "RUNNING"}
    assert sensors == {"new_landing_files": "RUNNING"}
