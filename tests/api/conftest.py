"""Fixtures for the scoring service: real model files in temporary directories, the real app
through TestClient, and real uvicorn processes on 127.0.0.1."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from integration.processes import ManagedProcess, free_port, wait_until
from model_factory import train_model_file

from leadscore_api.settings import ApiSettings
from leadscore_core.artifact import write_atomically

from .support import TEST_POLL_SECONDS, ModelFiles, Server, running_app


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> ModelFiles:
    folder = tmp_path_factory.mktemp("trained")
    v1 = train_model_file(folder / "v1.json", model_version="test/1", seed=1)
    v2 = train_model_file(folder / "v2.json", model_version="test/2", seed=2)
    seed = train_model_file(folder / "seed.json", feature_set="seed", model_version="seed/1")
    return ModelFiles(v1.read_bytes(), v2.read_bytes(), seed.read_bytes())


@pytest.fixture(autouse=True)
def _no_outside_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from each test, never from the environment the suite runs in."""
    for name in list(os.environ):
        if name.startswith("LEADSCORE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "models" / "lead_scoring_model.json"


@pytest.fixture
def publish(model_path: Path) -> Callable[[bytes], None]:
    """Publish bytes the way the pipeline does: atomically replace the served file."""
    return lambda raw: write_atomically(model_path, raw)


@pytest.fixture
def settings_for(tmp_path: Path, model_path: Path) -> Callable[..., ApiSettings]:
    def build(**overrides: Any) -> ApiSettings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "model_path": model_path,
            "model_poll_seconds": TEST_POLL_SECONDS,
        }
        return ApiSettings(**{**values, **overrides})

    return build


@pytest.fixture
def client(
    model_files: ModelFiles,
    publish: Callable[[bytes], None],
    settings_for: Callable[..., ApiSettings],
) -> Iterator[TestClient]:
    """The app serving model v1 ("test/1"), without authentication."""
    publish(model_files.v1)
    with running_app(settings_for()) as test_client:
        yield test_client


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start real service processes on free ports; each is stopped (whole group) afterwards."""
    started: list[ManagedProcess] = []

    def start(env: dict[str, str], *, console_script: bool = False) -> Server:
        port = free_port()
        if console_script:
            script = Path(sys.executable).with_name("leadscore-api")
            command = [str(script), "--host", "127.0.0.1", "--port", str(port)]
        else:
            command = [sys.executable, "-m", "uvicorn", "leadscore_api.main:app"]
            command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("LEADSCORE_")}
        process = ManagedProcess(
            f"scoring service :{port}",
            command,
            env={**inherited, **env},
            log_path=tmp_path / f"service-{port}.log",
            cwd=tmp_path,
        )
        started.append(process)
        server = Server(f"http://127.0.0.1:{port}", process)
        wait_until(
            lambda: _health_ok(server),
            timeout=60,
            what=f"the service on port {port} to answer /health",
            interval=0.1,
            still_running=process,
        )
        return server

    try:
        yield start
    finally:
        for process in started:
            process.stop()


def _health_ok(server: Server) -> bool | None:
    try:
        with server.client() as http:
            return True if http.get("/health").status_code == 200 else None
    except httpx.TransportError:
        return None
