"""`dagster dev -w workspace.yaml` with the shipped instance settings: it serves the whole graph
with the schedule and sensors running, overlapping runs of the chain queue instead of colliding,
and the daemon re-scores the open leads when the mart changed without a scoring."""

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
        name
        location { name }
        schedules { name scheduleState { status } }
        sensors { name sensorState { status } }
      }
    }
  }
}
"""
LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}
"""
RUNS = "{ runsOrError { ... on Runs { results { runId status startTime endTime } } } }"
RUN_TAGS = """
query Run($runId: ID!) { runOrError(runId: $runId) { ... on Run { status tags { key value } } } }
"""
LATEST_SCORING = """
{ assetOrError(assetKey: {path: ["lead_scores"]}) {
    ... on Asset { assetMaterializations(limit: 1) { runId } } } }
"""
IN_PROGRESS = {"STARTING", "STARTED", "CANCELING"}
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}

pytestmark = pytest.mark.slow


def _graphql(base: str, query: str = QUERY, variables: dict | None = None) -> dict | None:
    try:
        response = httpx.post(
            f"{base}/graphql", json={"query": query, "variables": variables or {}}, timeout=30
        )
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return response.json().get("data") or None


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory):
    """dagster dev on a fresh data directory in demo mode (small data), with deploy/dagster.yaml."""
    work = tmp_path_factory.mktemp("dagster-dev")
    install_instance_config(work / "dagster")
    port = free_port()
    env = {
        **os.environ,
        "LEADSCORE_DATA_DIR": str(work / "data"),
        "DAGSTER_HOME": str(work / "dagster"),
        "LEADSCORE_DEMO_MODE": "true",
        "LEADSCORE_SYNTHETIC_LEADS": "3000",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
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
        log_path=work / "dagster-dev.log",
        cwd=REPO_ROOT,
    )
    base = f"http://127.0.0.1:{port}"

    def serving() -> dict | None:
        data = _graphql(base)
        return data if data and data.get("assetNodes") else None

    try:
        data = wait_until(
            serving,
            timeout=180,
            what="dagster dev to serve the asset graph",
            interval=1,
            still_running=process,
        )
        yield base, data, process
    finally:
        process.stop(grace_seconds=5)


def test_dagster_dev_shows_the_asset_graph_schedule_and_sensor(dagster_dev):
    _, data, _ = dagster_dev
    keys = {"/".join(node["assetKey"]["path"]) for node in data["assetNodes"]}
    assert {"landing_files", "marts/fct_lead_scoring_features", "published_model"} <= keys
    repository = data["repositoriesOrError"]["nodes"][0]
    schedules = {s["name"]: s["scheduleState"]["status"] for s in repository["schedules"]}
    sensors = {s["name"]: s["sensorState"]["status"] for s in repository["sensors"]}
    assert schedules == {"daily_retrain": "RUNNING"}
    assert sensors == {"new_landing_files": "RUNNING", "rescore_open_leads": "RUNNING"}


def _repository_selector(data: dict) -> dict:
    repository = data["repositoriesOrError"]["nodes"][0]
    return {
        "repositoryLocationName": repository["location"]["name"],
        "repositoryName": repository["name"],
    }


def _runs(base: str) -> list[dict]:
    data = _graphql(base, RUNS)
    return data["runsOrError"]["results"] if data else []


def test_overlapping_runs_queue_instead_of_colliding(dagster_dev):
    base, data, process = dagster_dev
    params = {
        "selector": {**_repository_selector(data), "jobName": "retrain_job"},
        "runConfigData": {},
    }
    launched = []
    for _ in range(2):  # e.g. the schedule firing while someone clicks "Materialize all"
        result = _graphql(base, LAUNCH, {"params": params})["launchRun"]
        assert result["__typename"] == "LaunchRunSuccess", result
        launched.append(result["run"]["runId"])

    seen_waiting = False

    def all_finished() -> list[dict] | None:
        nonlocal seen_waiting
        runs = _runs(base)
        statuses = {run["runId"]: run["status"] for run in runs}
        busy = [r for r in runs if r["status"] in IN_PROGRESS]
        assert len(busy) <= 1, f"runs overlapped: {statuses}"
        if busy and any(statuses.get(run_id) == "QUEUED" for run_id in launched):
            seen_waiting = True
        ours = [statuses.get(run_id) for run_id in launched]
        return runs if all(status in FINISHED for status in ours) else None

    runs = wait_until(
        all_finished,
        timeout=480,
        interval=0.5,
        what="both launched runs to finish",
        still_running=process,
    )
    assert seen_waiting, "the second run never waited for the first"
    by_id = {run["runId"]: run for run in runs}
    assert [by_id[run_id]["status"] for run_id in launched] == ["SUCCESS", "SUCCESS"]
    spans = sorted((run["startTime"], run["endTime"]) for run in runs if run["startTime"])
    for (_, first_end), (second_start, _) in zip(spans, spans[1:], strict=False):
        assert second_start >= first_end, f"runs overlapped in time: {spans}"


def test_the_daemon_rescores_when_the_mart_changed_without_a_scoring(dagster_dev):
    """A run that rebuilds only the mart (as a retrain whose candidate is refused does) leaves
    the lead scores behind; the automation sensor `rescore_open_leads` starts the scoring."""
    base, data, process = dagster_dev
    params = {
        "selector": {
            **_repository_selector(data),
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": ["marts", "fct_lead_scoring_features"]}],
        },
        "runConfigData": {},
    }
    result = _graphql(base, LAUNCH, {"params": params})["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    mart_run = result["run"]["runId"]

    def scored_by_automation() -> dict | None:
        latest = _graphql(base, LATEST_SCORING)
        materializations = (latest or {}).get("assetOrError", {}).get("assetMaterializations")
        if not materializations:
            return None
        run = _graphql(base, RUN_TAGS, {"runId": materializations[0]["runId"]})["runOrError"]
        tags = {tag["key"]: tag["value"] for tag in run["tags"]}
        automated = tags.get("dagster/from_automation_condition") == "true"
        return run if automated and run["status"] in FINISHED else None

    run = wait_until(
        scored_by_automation,
        timeout=300,
        interval=2,
        what="the automation sensor to re-score the open leads",
        still_running=process,
    )
    statuses = {r["runId"]: r["status"] for r in _runs(base)}
    assert statuses[mart_run] == "SUCCESS"
    assert run["status"] == "SUCCESS"
