"""Demo data is opt-in: never generated, and never promoted, unless demo mode is on."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pipeline_runner import new_pipeline

from leadscore_api.main import create_app
from leadscore_api.settings import ApiSettings
from leadscore_assets.demo.files import write_landing
from leadscore_assets.demo.generator import generate

pytestmark = pytest.mark.slow


def test_an_empty_landing_folder_is_not_seeded_without_demo_mode(tmp_path):
    pipeline = new_pipeline(tmp_path, demo_mode=False)
    result = pipeline.run()
    assert not result.success
    assert "LEADSCORE_DEMO_MODE" in pipeline.failure_messages(result)
    assert not any(pipeline.settings.landing_dir.glob("*.csv"))
    pipeline.instance.dispose()


def test_a_model_trained_on_demo_data_is_refused_without_demo_mode(tmp_path):
    pipeline = new_pipeline(tmp_path, demo_mode=False)
    write_landing(generate(3_000, 3), pipeline.settings.landing_dir)
    result = pipeline.run()

    assert not result.success
    gate = pipeline.check_results(result)["promotion_gate"]
    assert not gate.passed
    assert "synthetic demo data" in gate.description
    trained = pipeline.materialization(result, "lead_scoring_model")
    assert trained.metadata["demo"].value is True
    assert not pipeline.settings.published_model_path.exists()
    pipeline.instance.dispose()


def test_the_api_says_when_it_serves_a_demo_model(trained_pipeline):
    settings = trained_pipeline.settings
    assert settings.demo_mode
    with TestClient(create_app(ApiSettings(data_dir=settings.data_dir))) as client:
        response = client.get("/model")
    assert response.status_code == 200, response.text
    assert response.json()["demo"] is True
