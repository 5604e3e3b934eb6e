"""Shared fixtures. The dbt manifest is prepared before collection because dagster-dbt reads
it when `leadscore_assets.definitions` is imported."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Write-back goes to the local fake HubSpot only: a token or portal in the environment the
    # suite runs in must never receive the test pipelines' scores.
    for name in [name for name in os.environ if name.startswith("LEADSCORE_HUBSPOT_")]:
        del os.environ[name]
    try:
        from leadscore_assets.project import prepare_manifest
        from leadscore_assets.settings import PipelineSettings
    except ImportError:  # the API-only install has no pipeline extras
        return
    prepare_manifest(PipelineSettings())


REPO_ROOT = Path(__file__).resolve().parents[1]


def checkout_files() -> dict[str, tuple[int, int]]:
    """The dbt project's files and the checkout's top-level entries, with size and mtime: what a
    pipeline run must leave as it found them (its output goes to the data directory)."""
    files = {
        str(p.relative_to(REPO_ROOT)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in (REPO_ROOT / "dbt_project").rglob("*")
        if p.is_file()
    }
    top_level = {p.name: (0, 0) for p in REPO_ROOT.iterdir() if p.name != ".pytest_cache"}
    return {**files, **top_level}


@pytest.fixture(scope="session")
def trained_pipeline(tmp_path_factory: pytest.TempPathFactory):
    """A full materialisation of `retrain_job` on a small generated dataset (shared, read-only)."""
    from pipeline_runner import new_pipeline

    pipeline = new_pipeline(tmp_path_factory.mktemp("pipeline-data"))
    pipeline.environment_before = dict(os.environ)
    pipeline.checkout_before = checkout_files()
    result = pipeline.run()
    pipeline.checkout_after = checkout_files()
    assert result.success, pipeline.failure_messages(result)
    pipeline.result = result
    yield pipeline
    pipeline.instance.dispose()


@pytest.fixture(scope="session")
def pipeline_model_path(trained_pipeline) -> Path:
    """The model file the pipeline published (what the scoring API serves)."""
    return trained_pipeline.settings.published_model_path


# `.ci/run` sets this: there, a missing PostgreSQL server is a failure, not a reason to skip.
REQUIRE_POSTGRES_VARIABLE = "LEADSCORE_TEST_POSTGRES"


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for the session (tests/postgres_server.py), stopped at the end."""
    from postgres_server import PostgresServer, binaries_dir

    bin_dir = binaries_dir()
    if bin_dir is None:
        reason = (
            "PostgreSQL server binaries (initdb, postgres) not found: install Debian's "
            "`postgresql` package (.ci/run does when they are missing)"
        )
        if os.environ.get(REQUIRE_POSTGRES_VARIABLE) == "required":
            pytest.fail(reason)
        pytest.skip(reason)
    server = PostgresServer(bin_dir).start()
    yield server
    server.stop()


def postgres_database(server) -> str:
    """A new, empty database on `server`; returns its name."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    server.create_database(name)
    return name


@pytest.fixture
def postgres_warehouse(postgres_server):
    """A warehouse on a new, empty PostgreSQL database."""
    from leadscore_assets.warehouse import PostgresWarehouse

    return PostgresWarehouse(**postgres_server.connection(postgres_database(postgres_server)))


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path):
    """An empty warehouse on each engine: a DuckDB file, and a new PostgreSQL database."""
    from leadscore_assets.warehouse import DuckDBWarehouse

    if request.param == "duckdb":
        return DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    return request.getfixturevalue("postgres_warehouse")
