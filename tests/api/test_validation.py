"""Bad input gets a 422 naming the field (or a 413 for an oversized body), never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from leadscore_core.features import INPUT_FIELDS

from .support import EXAMPLE_LEAD, running_app

REQUIRED = [field.name for field in INPUT_FIELDS if field.required]


def invalid(**changes: Any) -> dict[str, Any]:
    return {**EXAMPLE_LEAD, **changes}


def without(name: str) -> dict[str, Any]:
    return {key: value for key, value in EXAMPLE_LEAD.items() if key != name}


CASES: dict[str, tuple[dict[str, Any], str]] = {
    **{f"missing {name}": (without(name), name) for name in REQUIRED},
    "sessions as a string": (invalid(sessions="5"), "sessions"),
    "sessions as a fraction": (invalid(sessions=5.5), "sessions"),
    "contact_id as a boolean": (invalid(contact_id=True), "contact_id"),
    "sessions as a boolean": (invalid(sessions=True), "sessions"),
    "sessions as null": (invalid(sessions=None), "sessions"),
    "page_views as a list": (invalid(page_views=[12]), "page_views"),
    "is_first_visit as a string": (invalid(is_first_visit="yes"), "is_first_visit"),
    "is_first_visit as a number": (invalid(is_first_visit=1), "is_first_visit"),
    "channel as a number": (invalid(channel=7), "channel"),
    "channel empty": (invalid(channel=""), "channel"),
    "channel absurdly long": (invalid(channel="x" * 101), "channel"),
    "engagement time as a string": (
        invalid(total_engagement_seconds="300"),
        "total_engagement_seconds",
    ),
    "email as a number": (invalid(email=5), "email"),
    "contact_id as a list": (invalid(contact_id=["a"]), "contact_id"),
    "explain as a string": (invalid(explain="please"), "explain"),
    "explain as the string true": (invalid(explain="true"), "explain"),
    "explain as a number": (invalid(explain=1), "explain"),
    "negative sessions": (invalid(sessions=-1), "sessions"),
    "negative engaged_sessions": (invalid(engaged_sessions=-1), "engaged_sessions"),
    "negative page_views": (invalid(page_views=-3), "page_views"),
    "negative engagement time": (
        invalid(total_engagement_seconds=-0.5),
        "total_engagement_seconds",
    ),
    "negative active span": (invalid(days_active_span=-1), "days_active_span"),
    "negative distinct_channels": (invalid(distinct_channels=-1), "distinct_channels"),
    "engaged_sessions above sessions": (invalid(engaged_sessions=6), "engaged_sessions"),
    "absurd sessions": (invalid(sessions=10**12, engaged_sessions=0), "sessions"),
    "sessions beyond 64 bits": (invalid(sessions=10**40, engaged_sessions=0), "sessions"),
    "absurd page_views": (invalid(page_views=10**9), "page_views"),
    "absurd engagement time": (invalid(total_engagement_seconds=1e300), "total_engagement_seconds"),
    "absurd active span": (invalid(days_active_span=1e6), "days_active_span"),
    "absurd distinct_channels": (invalid(distinct_channels=10_000), "distinct_channels"),
    "unknown field": (invalid(sesions=5), "sesions"),
}


@pytest.mark.parametrize(("body", "field"), CASES.values(), ids=CASES.keys())
def test_invalid_lead_is_422_naming_the_field(client, body: dict[str, Any], field: str) -> None:
    response = client.post("/score", json=body)
    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["detail"]]


def test_engaged_sessions_error_says_what_the_rule_is(client) -> None:
    response = client.post("/score", json=invalid(engaged_sessions=9))
    (error,) = response.json()["detail"]
    assert error["msg"] == "engaged_sessions (9) must not exceed sessions (5)"
    assert error["loc"] == ["body", "engaged_sessions"]


def test_every_error_is_reported_at_once(client) -> None:
    response = client.post("/score", json={"sessions": -1, "channel": 3})
    fields = {error["field"] for error in response.json()["detail"]}
    assert {"sessions", "channel", "engaged_sessions", "page_views", "is_first_visit"} <= fields


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_rejected(client, literal: str) -> None:
    body = (
        '{"sessions": 5, "engaged_sessions": 3, "page_views": 12, "channel": "Direct", '
        f'"is_first_visit": false, "total_engagement_seconds": {literal}}}'
    )
    response = client.post("/score", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] in ("total_engagement_seconds", "body")


@pytest.mark.parametrize(
    "body", [b"", b"{", b"[]", b"null", b'"lead"', b"\xff\xfe", b"sessions=5"], ids=repr
)
def test_a_body_that_is_not_a_lead_object_is_422(client, body: bytes) -> None:
    response = client.post("/score", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == "body"


def test_explain_query_must_be_a_boolean(client) -> None:
    response = client.post("/score", params={"explain": "maybe"}, json=EXAMPLE_LEAD)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "explain"


def test_whole_numbers_may_be_written_as_floats(client) -> None:
    """JSON Schema's `integer` admits 5.0, and so does the service."""
    as_floats = invalid(sessions=5.0, engaged_sessions=3.0, page_views=12.0, contact_id=7.0)
    response = client.post("/score", json=as_floats)
    assert response.status_code == 200, response.text
    assert response.json()["score"] == client.post("/score", json=EXAMPLE_LEAD).json()["score"]
    assert response.json()["contact_id"] == 7


def test_optional_fields_may_be_null(client) -> None:
    response = client.post("/score", json=invalid(total_engagement_seconds=None, email=None))
    assert response.status_code == 200, response.text


def test_oversized_body_is_413_before_parsing(client) -> None:
    response = client.post("/score", json=invalid(email="a" * 20_000))
    assert response.status_code == 413
    assert "Too Large" in response.text


def test_oversized_chunked_body_is_413(client) -> None:
    """No Content-Length: the limit is enforced on the bytes actually received."""
    chunks = (b" " * 4096 for _ in range(8))
    response = client.post("/score", content=chunks, headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_oversized_batch_body_is_413(client) -> None:
    padding = " " * (10_000 * 1024 + 1)
    body = '{"leads": [' + padding + "]}"
    response = client.post(
        "/score/batch", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_batch_errors_name_the_index_and_field(client) -> None:
    leads = [EXAMPLE_LEAD] * 20
    leads[17] = invalid(sessions=-2, engaged_sessions=0)
    leads[3] = invalid(engaged_sessions=99)
    response = client.post("/score/batch", json={"leads": leads})
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["detail"]] == [
        "leads.3.engaged_sessions",
        "leads.17.sessions",
    ]


def test_a_batch_of_broken_leads_reports_a_bounded_error_list(client) -> None:
    response = client.post("/score/batch", json={"leads": [{"sessions": "x"}] * 2000})
    assert response.status_code == 422
    body = response.json()
    assert len(body["detail"]) == 100
    assert body["error_count"] > 2000


@pytest.mark.parametrize("value", [1, 0, "true", "false", None])
def test_batch_explain_must_be_a_json_boolean(client, value: Any) -> None:
    response = client.post("/score/batch", json={"leads": [EXAMPLE_LEAD], "explain": value})
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["detail"]] == ["explain"]


def test_oversized_bodies_get_the_same_413_declared_or_chunked(
    model_files, publish, settings_for
) -> None:
    """Whatever else is wrong with the request (no model yet, no API key), an oversized body is
    a 413, and the same one whether its size was declared (Content-Length) or not (chunked)."""
    body = b'{"email": "' + b"a" * 11_000_000 + b'"}'
    headers = {"content-type": "application/json"}
    for with_model in (False, True):
        if with_model:
            publish(model_files.v1)
        for api_key in (None, "key"):
            with running_app(settings_for(api_key=api_key)) as app_client:
                for path in ("/score", "/score/batch"):
                    declared = app_client.post(path, content=body, headers=headers)
                    chunked = app_client.post(
                        path,
                        content=(body[i : i + 65536] for i in range(0, len(body), 65536)),
                        headers=headers,
                    )
                    answers = [
                        (r.status_code, r.headers["content-type"], r.text)
                        for r in (declared, chunked)
                    ]
                    assert answers[0] == answers[1], (path, with_model, api_key, answers)
                    assert answers[0][0] == 413 and "Too Large" in answers[0][2]


def test_batch_rejects_unknown_top_level_fields(client) -> None:
    response = client.post("/score/batch", json={"leads": [EXAMPLE_LEAD], "lead": EXAMPLE_LEAD})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "lead"
