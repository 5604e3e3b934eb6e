"""Shared fixtures. The dbt manifest is prepared before collection because dagster-dbt reads
it when `leadscore_assets.definitions` is imported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    try:
        from leadscore_assets.project import prepare_manifest
        from leadscore_assets.settings import PipelineSettings
    except ImportError:  # the API-only install has no pipeline extras
        return
    prepare_manifest(PipelineSettings())


@pytest.fixture(scope="session")
def trained_pipeline(tmp_path_factory: pytest.TempPathFactory):
    """A full materialisation of `retrain_job` on a small generated dataset (shared, read-only)."""
    from pipeline_runner import new_pipeline

    pipeline = new_pipeline(tmp_path_factory.mktemp("pipeline-data"))
    pipeline.environment_before = dict(os.environ)
    result = pipeline.run()
    assert result.success, pipeline.failure_messages(result)
    pipeline.result = result
    yield pipeline
    pipeline.instance.dispose()


@pytest.fixture(scope="session")
def pipeline_model_path(trained_pipeline) -> Path:
    """The model file the pipeline published (what the scoring API serves)."""
    return trained_pipeline.settings.published_model_path
