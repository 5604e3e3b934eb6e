"""Shared fixtures. The dbt manifest is prepared before collection because dagster-dbt reads
it when `leadscore_assets.definitions` is imported."""

from __future__ import annotations

import os
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
