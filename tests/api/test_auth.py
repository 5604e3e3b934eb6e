"""LEADSCORE_API_KEY guards scoring and /model; health, readiness and metrics stay open."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from leadscore_api.settings import ApiSettings

from .support import EXAMPLE_LEAD, running_app

KEY = "correct horse battery staple"
GUARDED = [
    ("POST", "/score", {"json": EXAMPLE_LEAD}),
    ("POST", "/score/batch", {"json": {"leads": [EXAMPLE_LEAD]}}),
    ("GET", "/model", {}),
]
OPEN = ["/health", "/ready", "/metrics"]


@pytest.fixture
def guarded_client(model_files, publish, settings_for) -> Iterator[TestClient]:
    publish(model_files.v1)
    with running_app(settings_for(api_key=KEY)) as client:
        yield client


@pytest.mark.parametrize(("method", "path", "body"), GUARDED, ids=[p for _, p, _ in GUARDED])
@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": ""}, {"X-API-Key": "wrong"}, {"X-API-Key": KEY + " "}],
    ids=["absent", "empty", "wrong", "almost"],
)
def test_guarded_routes_need_the_key(guarded_client, method, path, body, headers) -> None:
    response = guarded_client.request(method, path, headers=headers, **body)
    assert response.status_code == 401
    assert response.json() == {"detail": "missing or wrong X-API-Key header"}


@pytest.mark.parametrize(("method", "path", "body"), GUARDED, ids=[p for _, p, _ in GUARDED])
def test_guarded_routes_answer_with_the_key(guarded_client, method, path, body) -> None:
    response = guarded_client.request(method, path, headers={"X-API-Key": KEY}, **body)
    assert response.status_code == 200, response.text


def test_the_key_is_checked_before_the_body(guarded_client) -> None:
    """Without the key nobody learns anything, not even what a valid body looks like."""
    for path in ("/score", "/score/batch"):
        assert guarded_client.post(path, json={"sessions": -1, "leads": 5}).status_code == 401
        assert guarded_client.post(path, content=b"\xff{not json").status_code == 401


def test_a_non_ascii_key_is_refused_not_a_crash(guarded_client) -> None:
    response = guarded_client.post(
        "/score", json=EXAMPLE_LEAD, headers={"X-API-Key": "clé".encode("latin-1")}
    )
    assert response.status_code == 401


@pytest.mark.parametrize("path", OPEN)
def test_operational_routes_stay_open(guarded_client, path: str) -> None:
    assert guarded_client.get(path).status_code == 200


def test_without_a_key_everything_is_open(client) -> None:
    assert client.post("/score", json=EXAMPLE_LEAD).status_code == 200
    assert client.get("/model").status_code == 200
    assert "securitySchemes" not in client.get("/openapi.json").json().get("components", {})


def test_openapi_declares_the_header_on_guarded_routes_only(guarded_client) -> None:
    schema = guarded_client.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    (name,) = schemes
    assert schemes[name] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "Required when LEADSCORE_API_KEY is set.",
    }
    for method, path, _ in GUARDED:
        operation = schema["paths"][path][method.lower()]
        assert operation["security"] == [{name: []}]
        assert "401" in operation["responses"]
    for path in OPEN:
        assert "security" not in schema["paths"][path]["get"]


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_key_setting_means_no_key(monkeypatch, blank: str) -> None:
    monkeypatch.setenv("LEADSCORE_API_KEY", blank)
    assert ApiSettings().api_key is None


def test_the_key_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("LEADSCORE_API_KEY", KEY)
    settings = ApiSettings()
    assert settings.api_key is not None and settings.api_key.get_secret_value() == KEY
    assert KEY not in repr(settings)
