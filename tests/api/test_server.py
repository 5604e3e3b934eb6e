"""The service as deployed: a real uvicorn process on 127.0.0.1, real HTTP, real files.

The hot reload runs at the default poll interval (1 s) under concurrent single and batch
requests: not one request may fail, every response must come entirely from one model, and the
new model must be served within 5 seconds of publishing.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from integration.processes import wait_until

from leadscore_api.schemas import Lead
from leadscore_api.scoring import input_columns
from leadscore_core.artifact import load_model_bytes, write_atomically

from .support import EXAMPLE_LEAD, ModelFiles, Server, metric_value, sample_leads

SWITCH_DEADLINE = 5.0
SINGLE_CLIENTS = 3


def expected_scores(raw_model: bytes, leads: list[dict[str, Any]]) -> list[float]:
    model = load_model_bytes(raw_model)
    return model.predict_proba(
        input_columns([Lead.model_validate(lead) for lead in leads])
    ).tolist()


class Recorder:
    """Calls one endpoint in a loop on its own connection, recording every outcome."""

    def __init__(self, server: Server, path: str, body: dict[str, Any], stop: threading.Event):
        self.outcomes: list[tuple[float, int, Any]] = []
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, args=(server, path, body, stop))
        self._thread.start()

    def _run(self, server: Server, path: str, body: dict[str, Any], stop: threading.Event) -> None:
        with server.client() as http:
            while not stop.is_set():
                try:
                    response = http.post(path, json=body)
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))
                    continue
                payload = response.json() if response.status_code == 200 else response.text
                self.outcomes.append((time.monotonic(), response.status_code, payload))

    def join(self) -> None:
        self._thread.join(timeout=60)
        assert not self._thread.is_alive()

    def versions(self) -> list[str]:
        return [payload["model_version"] for _, _, payload in self.outcomes]

    def first_time_serving(self, version: str) -> float | None:
        return next((t for t, _, p in self.outcomes if p["model_version"] == version), None)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"LEADSCORE_DATA_DIR": str(tmp_path / "data"), **extra}


def test_hot_reload_under_concurrent_load(
    start_server, model_files: ModelFiles, model_path: Path, tmp_path: Path
) -> None:
    write_atomically(model_path, model_files.v1)
    server = start_server(_env(tmp_path, LEADSCORE_MODEL_PATH=str(model_path)))
    batch = sample_leads(2000)
    single_expected = {
        "test/1": expected_scores(model_files.v1, [EXAMPLE_LEAD])[0],
        "test/2": expected_scores(model_files.v2, [EXAMPLE_LEAD])[0],
    }
    batch_expected = {
        "test/1": expected_scores(model_files.v1, batch),
        "test/2": expected_scores(model_files.v2, batch),
    }
    assert single_expected["test/1"] != single_expected["test/2"]

    stop = threading.Event()
    singles = [Recorder(server, "/score", EXAMPLE_LEAD, stop) for _ in range(SINGLE_CLIENTS)]
    batches = Recorder(server, "/score/batch", {"leads": batch}, stop)
    recorders = [*singles, batches]
    try:
        time.sleep(1.0)
        published_at = time.monotonic()
        write_atomically(model_path, model_files.v2)
        wait_until(
            lambda: all(r.first_time_serving("test/2") for r in recorders) or None,
            timeout=SWITCH_DEADLINE + 5,
            what="every client to be served model test/2",
            interval=0.05,
        )
        time.sleep(0.5)
    finally:
        stop.set()
        for recorder in recorders:
            recorder.join()

    for recorder in recorders:
        assert recorder.errors == []
        assert {status for _, status, _ in recorder.outcomes} == {200}, recorder.outcomes[-1]
        versions = recorder.versions()
        switch = versions.index("test/2")
        assert set(versions[:switch]) == {"test/1"} and set(versions[switch:]) == {"test/2"}
        assert recorder.first_time_serving("test/2") - published_at < SWITCH_DEADLINE
    for single in singles:
        for _, _, payload in single.outcomes:
            assert payload["score"] == pytest.approx(
                single_expected[payload["model_version"]], abs=1e-9
            )
    for _, _, payload in batches.outcomes:
        scores = [result["score"] for result in payload["results"]]
        assert scores == pytest.approx(batch_expected[payload["model_version"]], abs=1e-9)
    assert sum(len(single.outcomes) for single in singles) > 100

    with server.client() as http:
        assert metric_value(http, "leadscore_model_reloads_total") == 2
        write_atomically(model_path, model_files.v1[: len(model_files.v1) // 3])
        wait_until(
            lambda: metric_value(http, "leadscore_model_reload_failures_total") == 1 or None,
            timeout=SWITCH_DEADLINE,
            what="the truncated file to be rejected",
            interval=0.1,
        )
        assert http.get("/ready").status_code == 200
        assert http.post("/score", json=EXAMPLE_LEAD).json()["model_version"] == "test/2"


def test_console_script_starts_without_a_model_then_serves_the_published_one(
    start_server, model_files: ModelFiles, tmp_path: Path
) -> None:
    """Also proves the default location: `$LEADSCORE_DATA_DIR/models/lead_scoring_model.json`."""
    server = start_server(_env(tmp_path), console_script=True)
    with server.client() as http:
        ready = http.get("/ready")
        assert ready.status_code == 503
        assert "no model published yet" in ready.json()["detail"]
        assert http.post("/score", json=EXAMPLE_LEAD).status_code == 503

        published_at = time.monotonic()
        write_atomically(tmp_path / "data" / "models" / "lead_scoring_model.json", model_files.v1)
        wait_until(
            lambda: http.get("/ready").status_code == 200 or None,
            timeout=SWITCH_DEADLINE,
            what="the published model to be served",
            interval=0.05,
        )
        assert time.monotonic() - published_at < SWITCH_DEADLINE
        response = http.post("/score", json=EXAMPLE_LEAD)
        assert response.status_code == 200
        assert response.json()["model_version"] == "test/1"
