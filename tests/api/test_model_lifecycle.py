"""Loading, hot reloading and rejecting model files; starting before any model exists; /model."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from integration.processes import wait_until

from .support import (
    EXAMPLE_LEAD,
    TEST_POLL_SECONDS,
    ModelFiles,
    metric_value,
    running_app,
    unvalidated_model,
    with_metadata,
)

RELOAD_TIMEOUT = 5.0


def _rename_first_feature(metadata: dict) -> None:
    metadata["features"][0]["name"] = "favourite_colour"


BAD_FILES: dict[str, Callable[[ModelFiles], bytes]] = {
    "corrupt": lambda files: b"\x00\x13 not a model \xff" * 100,
    "truncated": lambda files: files.v2[: len(files.v2) // 2],
    "empty": lambda files: b"",
    "plain xgboost, no leadscore metadata": lambda files: unvalidated_model(
        files.v2, lambda metadata: None
    ).replace(b"leadscore_metadata", b"other_attribute"),
    "feature-incompatible: unknown feature": lambda files: unvalidated_model(
        files.v2, _rename_first_feature
    ),
    "feature-incompatible: booster of other features": lambda files: unvalidated_model(
        files.seed, lambda metadata: unvalidated_metadata_of(files.v2)
    ),
    "metadata that is not an object": lambda files: unvalidated_model(files.v2, lambda _: [1, 2]),
    "unknown calibration": lambda files: unvalidated_model(
        files.v2, lambda metadata: metadata.update(calibration={"method": "magic"})
    ),
}


def unvalidated_metadata_of(raw: bytes) -> dict:
    captured: dict = {}
    unvalidated_model(raw, captured.update)
    return captured


def served_version(client) -> str:
    return client.post("/score", json=EXAMPLE_LEAD).json()["model_version"]


def test_starts_without_a_model_and_serves_once_one_is_published(
    model_files: ModelFiles, publish, settings_for, caplog
) -> None:
    settings = settings_for()
    with caplog.at_level(logging.INFO, logger="leadscore_api"), running_app(settings) as client:
        assert client.get("/health").json() == {"status": "ok"}
        waiting = [r.getMessage() for r in caplog.records if "yet: waiting" in r.getMessage()]
        assert f"no model at {settings.served_model_path} yet" in " ".join(waiting)
        for response in (
            client.get("/ready"),
            client.post("/score", json=EXAMPLE_LEAD),
            client.post("/score/batch", json={"leads": [EXAMPLE_LEAD]}),
            client.get("/model"),
        ):
            assert response.status_code == 503
            assert response.json()["detail"] == (
                "no model published yet: waiting for the pipeline to publish one"
            )
        assert client.post("/score", json=EXAMPLE_LEAD).headers["retry-after"] == "1"

        publish(model_files.v1)
        wait_until(
            lambda: client.get("/ready").status_code == 200 or None,
            timeout=RELOAD_TIMEOUT,
            what="/ready to turn 200 after publishing",
            interval=0.02,
        )
        assert served_version(client) == "test/1"
        assert metric_value(client, "leadscore_model_reloads_total") == 1


def test_a_bad_file_at_startup_leaves_the_service_unready_with_the_reason(
    model_files: ModelFiles, publish, settings_for
) -> None:
    publish(model_files.v1[:100])
    with running_app(settings_for()) as client:
        response = client.get("/ready")
        assert response.status_code == 503
        assert response.json()["detail"].startswith(
            "no valid model loaded: the model file was rejected: not a JSON model file"
        )
        assert metric_value(client, "leadscore_model_reload_failures_total") == 1
        publish(model_files.v1)
        wait_until(
            lambda: client.get("/ready").status_code == 200 or None,
            timeout=RELOAD_TIMEOUT,
            what="the good file to be served",
            interval=0.02,
        )


@pytest.mark.parametrize("make_bad_file", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_bad_file_is_rejected_and_the_previous_model_keeps_serving(
    client, model_files: ModelFiles, publish, make_bad_file
) -> None:
    before = client.post("/score", json=EXAMPLE_LEAD).json()
    sha_before = client.get("/model").json()["file_sha256"]

    publish(make_bad_file(model_files))
    wait_until(
        lambda: metric_value(client, "leadscore_model_reload_failures_total") == 1 or None,
        timeout=RELOAD_TIMEOUT,
        what="the bad file to be rejected and counted",
        interval=0.02,
    )
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["model_version"] == "test/1"
    assert ready.json()["last_reload_error"]
    assert client.post("/score", json=EXAMPLE_LEAD).json() == before
    assert client.get("/model").json()["file_sha256"] == sha_before

    publish(model_files.v2)
    wait_until(
        lambda: served_version(client) == "test/2" or None,
        timeout=RELOAD_TIMEOUT,
        what="the next good model to be served",
        interval=0.02,
    )
    assert client.get("/ready").json()["last_reload_error"] is None
    assert metric_value(client, "leadscore_model_reloads_total") == 2
    assert metric_value(client, "leadscore_model_reload_failures_total") == 1


def test_a_feature_incompatible_file_is_named_as_such(client, model_files, publish) -> None:
    publish(BAD_FILES["feature-incompatible: unknown feature"](model_files))
    error = wait_until(
        lambda: client.get("/ready").json()["last_reload_error"],
        timeout=RELOAD_TIMEOUT,
        what="the rejection to be reported",
        interval=0.02,
    )
    assert error == "feature-incompatible model: unknown feature(s): favourite_colour"


def test_republishing_the_same_bytes_is_not_a_reload(
    client, model_files, publish, model_path: Path
) -> None:
    publish(model_files.v1)
    publish(model_files.v2)
    wait_until(
        lambda: served_version(client) == "test/2" or None,
        timeout=RELOAD_TIMEOUT,
        what="v2",
        interval=0.02,
    )
    publish(model_files.v2)  # a new inode with the same content
    model_path.touch()
    wait_until(
        lambda: not client.app.state.holder.changed() or None,
        timeout=RELOAD_TIMEOUT,
        what="the poller to look at the re-published file",
        interval=0.02,
    )
    time.sleep(10 * TEST_POLL_SECONDS)  # a wrongly counted reload would have landed by now
    assert metric_value(client, "leadscore_model_reloads_total") == 2
    assert client.get("/ready").json()["last_reload_error"] is None


def test_a_deleted_file_keeps_the_loaded_model_serving(client, model_path: Path) -> None:
    model_path.unlink()
    wait_until(
        lambda: not client.app.state.holder.changed() or None,
        timeout=RELOAD_TIMEOUT,
        what="the poller to notice the deletion",
        interval=0.02,
    )
    assert client.get("/ready").status_code == 200
    assert served_version(client) == "test/1"


def test_model_endpoint_shows_provenance_and_both_thresholds(
    model_files: ModelFiles, publish, settings_for, model_path: Path
) -> None:
    provenance = {
        "feature_set": "full",
        "metrics": {"roc_auc": 0.81, "average_precision": 0.42, "not_computable": float("nan")},
        "mlflow_run_id": "0123abcd",
        "mlflow_experiment_id": "7",
        "registered_model": {"name": "lead_scoring", "version": "3"},
        "dagster_run_id": "b7e2-run",
        "training_data": {"path": "data/lead_scoring_features.csv", "sha256": "ab" * 32},
        "code_version": {"git_commit": "deadbeef", "dbt_models": "cafe"},
        "something_new": [1, 2],
    }
    publish(with_metadata(model_files.v1, threshold=0.65, **provenance))
    with running_app(settings_for(high_threshold=0.9)) as client:
        info = client.get("/model").json()
    for key, value in provenance.items():
        if key != "metrics":
            assert info[key] == value
    assert info["metrics"]["roc_auc"] == 0.81 and info["metrics"]["not_computable"] is None
    assert info["model_version"] == "test/1"
    assert info["threshold"] == 0.65 and info["serving_threshold"] == 0.9
    assert info["calibration"] == {"method": "none"}
    assert [f["name"] for f in info["features"]][:3] == [
        "sessions",
        "engaged_sessions",
        "page_views",
    ]
    assert "Unassigned" in info["categories"]["channel"]
    assert info["trained_at"] == "2026-01-01T00:00:00+00:00"
    assert info["file_sha256"] == hashlib.sha256(model_path.read_bytes()).hexdigest()
    assert datetime.fromisoformat(info["loaded_at"]).tzinfo is not None


def test_model_endpoint_copes_with_sparse_metadata(client) -> None:
    info = client.get("/model").json()
    assert info["mlflow_run_id"] is None and info["dagster_run_id"] is None
    assert info["training_data"] is None and info["feature_set"] is None
