"""The service's settings come from LEADSCORE_* variables; bad values stop it at startup."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from leadscore_api.settings import ApiSettings


def test_the_model_defaults_to_the_pipelines_publish_location(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LEADSCORE_DATA_DIR", str(tmp_path))
    settings = ApiSettings()
    assert settings.served_model_path == tmp_path / "models" / "lead_scoring_model.json"
    assert settings.served_lead_scores_path == tmp_path / "models" / "lead_scores.sqlite"
    assert (settings.high_threshold, settings.model_poll_seconds, settings.max_batch) == (
        0.8,
        1.0,
        10_000,
    )
    assert settings.api_key is None


def test_every_setting_is_read_from_the_environment(monkeypatch, tmp_path: Path) -> None:
    for name, value in {
        "MODEL_PATH": str(tmp_path / "elsewhere.json"),
        "LEAD_SCORES_PATH": str(tmp_path / "scores" / "latest.sqlite"),
        "HIGH_THRESHOLD": "0.65",
        "MODEL_POLL_SECONDS": "0.5",
        "MAX_BATCH": "250",
        "KEEP_ALIVE_SECONDS": "2.5",
        "REQUEST_READ_TIMEOUT_SECONDS": "4",
        "LIMIT_CONCURRENCY": "64",
        "BACKLOG": "128",
    }.items():
        monkeypatch.setenv(f"LEADSCORE_{name}", value)
    settings = ApiSettings()
    assert settings.served_model_path == tmp_path / "elsewhere.json"
    assert settings.served_lead_scores_path == tmp_path / "scores" / "latest.sqlite"
    assert (settings.high_threshold, settings.model_poll_seconds, settings.max_batch) == (
        0.65,
        0.5,
        250,
    )
    assert (
        settings.keep_alive_seconds,
        settings.request_read_timeout_seconds,
        settings.limit_concurrency,
        settings.backlog,
    ) == (2.5, 4.0, 64, 128)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LEADSCORE_HIGH_THRESHOLD", "1.5"),
        ("LEADSCORE_HIGH_THRESHOLD", "high"),
        ("LEADSCORE_MODEL_POLL_SECONDS", "0"),
        ("LEADSCORE_MAX_BATCH", "-1"),
        ("LEADSCORE_REQUEST_READ_TIMEOUT_SECONDS", "0"),
        ("LEADSCORE_LIMIT_CONCURRENCY", "0"),
    ],
)
def test_a_bad_value_is_refused_naming_the_setting(monkeypatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as raised:
        ApiSettings()
    assert variable.removeprefix("LEADSCORE_").lower() in str(raised.value)
