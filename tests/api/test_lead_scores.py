"""Scores by contact id and email, answered from a real snapshot of a real model's scores."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from integration.processes import wait_until
from lead_scores_factory import FEATURES_AS_OF, score_open_leads

from leadscore_core.artifact import load_model_bytes
from leadscore_core.lead_scores import ScoredLeads, write_snapshot

from .support import ModelFiles, metric_value, running_app, sample_leads

RELOAD_TIMEOUT = 5.0
KEY = "lead-scores-key"
# Model v2 scores these engaged leads across every tier, the sample leads mostly low.
ENGAGED_LEADS = [
    {
        "sessions": sessions,
        "engaged_sessions": sessions,
        "page_views": sessions * pages,
        "channel": channel,
        "is_first_visit": False,
        "total_engagement_seconds": 600.0 * sessions,
        "days_active_span": 10.0,
        "distinct_channels": 2,
    }
    for sessions in (4, 8, 12)
    for pages in (4, 8)
    for channel in ("Email", "Referral")
]
LEADS = ENGAGED_LEADS + sample_leads(40)


def contact_ids(count: int) -> list[object]:
    """The id shapes CRMs use: Salesforce-style, UUIDs, HubSpot's integers (stored as text)."""
    shapes: list[Callable[[int], object]] = [
        lambda i: f"0035e00000{i:05d}AAA",
        lambda i: str(uuid.UUID(int=i)),
        lambda i: 1000 + i,
    ]
    return [shapes[i % len(shapes)](i) for i in range(count)]


def emails(count: int) -> list[str | None]:
    return [None if i % 7 == 3 else f"Lead.{i}@Example.com" for i in range(count)]


@pytest.fixture
def lead_scores_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "models" / "lead_scores.sqlite"


@pytest.fixture
def publish_scores(model_files: ModelFiles, lead_scores_path: Path) -> Callable[..., ScoredLeads]:
    """Score LEADS with a model file's bytes (default v2) and publish the snapshot."""

    def publish(raw_model: bytes = model_files.v2, **overrides: Any) -> ScoredLeads:
        values: dict[str, Any] = {
            "leads": LEADS,
            "contact_ids": contact_ids(len(LEADS)),
            "emails": emails(len(LEADS)),
            **overrides,
        }
        scored = score_open_leads(
            load_model_bytes(raw_model),
            values.pop("leads"),
            values.pop("contact_ids"),
            **values,
        )
        write_snapshot(lead_scores_path, scored)
        return scored

    return publish


@pytest.fixture
def client(model_files: ModelFiles, publish, publish_scores, settings_for) -> Iterator[TestClient]:
    """The app serving model v2 and the snapshot of its scores of LEADS."""
    publish(model_files.v2)
    publish_scores()
    with running_app(settings_for()) as test_client:
        yield test_client


def expected_tier(score: float) -> str:
    """The documented tiers, written out: A (> 0.8), B (0.5–0.8], C (0.2–0.5], D (≤ 0.2)."""
    return "A" if score > 0.8 else "B" if score > 0.5 else "C" if score > 0.2 else "D"


def test_a_lead_s_stored_score_is_what_post_score_answers_for_its_features(client) -> None:
    tiers_seen: set[str] = set()
    for lead, contact_id, email in zip(
        LEADS, contact_ids(len(LEADS)), emails(len(LEADS)), strict=True
    ):
        response = client.get(f"/leads/{contact_id}/score")
        assert response.status_code == 200, response.text
        stored = response.json()
        live = client.post("/score?explain=true", json=lead).json()
        assert stored["score"] == pytest.approx(live["score"], rel=0, abs=1e-12)
        assert stored["label"] == live["label"]
        assert stored["reasons"] == live["reasons"]
        assert stored["model_version"] == live["model_version"] == "test/2"
        assert stored["contact_id"] == str(contact_id) and stored["email"] == email
        assert stored["tier"] == expected_tier(stored["score"])
        tiers_seen.add(stored["tier"])
        assert datetime.fromisoformat(stored["features_as_of"]) == FEATURES_AS_OF
        assert datetime.fromisoformat(stored["scored_at"]).tzinfo is not None
    assert tiers_seen == {"A", "B", "C", "D"}


def test_answers_carry_exactly_the_documented_fields(client) -> None:
    body = client.get("/leads/1002/score").json()  # a HubSpot-style integer id
    assert set(body) == {
        "contact_id",
        "email",
        "score",
        "label",
        "tier",
        "reasons",
        "model_version",
        "scored_at",
        "features_as_of",
    }
    assert body["contact_id"] == "1002"  # integer ids are served as text


def test_lookup_by_email_ignores_case(client) -> None:
    for asked in ("lead.4@example.com", "LEAD.4@EXAMPLE.COM", "Lead.4@Example.com"):
        response = client.get("/leads/score", params={"email": asked})
        assert response.status_code == 200, response.text
        assert response.json()["contact_id"] == str(contact_ids(5)[4])
    assert client.get("/leads/score", params={"email": "Lead.4@Example.com"}).json() == (
        client.get(f"/leads/{contact_ids(5)[4]}/score").json()
    )


def test_an_email_shared_by_two_leads_is_a_conflict_naming_both(publish_scores, client) -> None:
    shared = ["twin@example.com", "TWIN@example.com", *emails(len(LEADS))[2:]]
    publish_scores(emails=shared)
    ids = contact_ids(2)

    def conflict() -> dict | None:
        response = client.get("/leads/score", params={"email": "twin@example.com"})
        return response.json() if response.status_code == 409 else None

    detail = wait_until(conflict, timeout=RELOAD_TIMEOUT, what="the new snapshot", interval=0.02)
    assert detail["detail"].startswith("2 open leads have email 'twin@example.com'")
    assert all(repr(str(contact_id)) in detail["detail"] for contact_id in ids)


def test_an_unknown_lead_is_a_404_that_says_so(client) -> None:
    response = client.get("/leads/no-such-contact/score")
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert detail.startswith("no score for contact 'no-such-contact': it is not an open lead")
    assert "model test/2" in detail and "next run" in detail
    by_email = client.get("/leads/score", params={"email": "nobody@example.com"})
    assert by_email.status_code == 404
    assert by_email.json()["detail"].startswith("no open lead with email 'nobody@example.com'")


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        (f"/leads/{'x' * 129}/score", {}, "contact_id"),
        ("/leads/score", {}, "email"),
        ("/leads/score", {"email": ""}, "email"),
        ("/leads/score", {"email": "x" * 321}, "email"),
    ],
    ids=["id too long", "email missing", "email empty", "email too long"],
)
def test_invalid_lookups_are_a_422_naming_the_field(client, path, params, field) -> None:
    response = client.get(path, params=params)
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["detail"]] == [field]


def test_without_a_snapshot_the_routes_are_unavailable_until_one_is_published(
    model_files: ModelFiles, publish, publish_scores, settings_for
) -> None:
    publish(model_files.v1)
    with running_app(settings_for()) as client:
        assert client.get("/ready").status_code == 200  # scoring by features is unaffected
        for path in ("/leads/1002/score", "/leads/score?email=lead.2@example.com"):
            response = client.get(path)
            assert response.status_code == 503
            assert response.headers["retry-after"] == "1"
            assert response.json()["detail"] == (
                "no lead scores snapshot published yet: waiting for the pipeline to publish one"
            )
        publish_scores()
        wait_until(
            lambda: client.get("/leads/1002/score").status_code == 200 or None,
            timeout=RELOAD_TIMEOUT,
            what="the published snapshot to be served",
            interval=0.02,
        )
        assert metric_value(client, "leadscore_lead_scores_reloads_total") == 1
        assert metric_value(client, "leadscore_lead_scores_rows") == len(LEADS)


def test_a_new_snapshot_is_served_without_a_restart(
    client, model_files: ModelFiles, publish_scores
) -> None:
    before = client.get("/leads/1002/score").json()
    dropped = str(contact_ids(1)[0])
    assert client.get(f"/leads/{dropped}/score").status_code == 200
    publish_scores(
        model_files.v1,
        leads=LEADS[1:],
        contact_ids=contact_ids(len(LEADS))[1:],
        emails=emails(len(LEADS))[1:],
    )
    wait_until(
        lambda: client.get("/leads/1002/score").json()["model_version"] == "test/1" or None,
        timeout=RELOAD_TIMEOUT,
        what="the snapshot of model test/1 to be served",
        interval=0.02,
    )
    after = client.get("/leads/1002/score").json()
    assert after["score"] != before["score"]
    assert client.get(f"/leads/{dropped}/score").status_code == 404  # no longer an open lead
    assert metric_value(client, "leadscore_lead_scores_reloads_total") == 2
    assert metric_value(client, "leadscore_lead_scores_rows") == len(LEADS) - 1


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(b"\x00 not a database \xff" * 64),
        lambda path: path.write_bytes(path.read_bytes()[:4096]),
        lambda path: path.write_bytes(b""),
    ],
    ids=["garbage", "truncated", "empty"],
)
def test_a_damaged_snapshot_is_rejected_and_the_previous_one_keeps_serving(
    client, lead_scores_path: Path, damage, tmp_path: Path
) -> None:
    before = client.get("/leads/1002/score").json()
    replacement = tmp_path / "replacement.sqlite"
    replacement.write_bytes(lead_scores_path.read_bytes())
    damage(replacement)
    replacement.replace(lead_scores_path)  # published by rename, as the pipeline does
    wait_until(
        lambda: metric_value(client, "leadscore_lead_scores_reload_failures_total") == 1 or None,
        timeout=RELOAD_TIMEOUT,
        what="the damaged snapshot to be rejected",
        interval=0.02,
    )
    assert client.get("/leads/1002/score").json() == before


def test_a_rejected_first_snapshot_says_why(
    model_files: ModelFiles, publish, settings_for, lead_scores_path: Path
) -> None:
    publish(model_files.v1)
    lead_scores_path.parent.mkdir(parents=True, exist_ok=True)
    lead_scores_path.write_bytes(b"SQLite format 2\x00 and then nothing useful")
    with running_app(settings_for()) as client:
        response = client.get("/leads/1002/score")
    assert response.status_code == 503
    assert response.json()["detail"].startswith(
        "no valid lead scores snapshot loaded: the lead scores snapshot file was rejected: "
        "not a readable snapshot"
    )


def test_the_lead_routes_need_the_api_key_when_one_is_set(
    model_files: ModelFiles, publish, publish_scores, settings_for
) -> None:
    publish(model_files.v1)
    publish_scores()
    with running_app(settings_for(api_key=KEY)) as client:
        for path in ("/leads/1002/score", "/leads/score?email=lead.2@example.com"):
            assert client.get(path).status_code == 401
            assert client.get(path, headers={"X-API-Key": "wrong"}).status_code == 401
            assert client.get(path, headers={"X-API-Key": KEY}).status_code == 200
        # The key is checked before anything about the lead is revealed.
        assert client.get("/leads/no-such-contact/score").status_code == 401


def test_label_and_tier_are_served_as_the_pipeline_published_them(
    model_files: ModelFiles, publish, publish_scores, settings_for
) -> None:
    """With the pipeline at a 0.9 threshold and the API at 0.8, a lead scoring in between is
    stored, and served, as low / B; the snapshot records the threshold it used."""
    publish(model_files.v2)
    scored = publish_scores(high_threshold=0.9, scored_at=datetime(2026, 12, 1, tzinfo=UTC))
    between = [row for row in scored.rows if 0.8 < row[2] <= 0.9]
    assert between, "model v2 scores no lead of LEADS between 0.8 and 0.9"
    with running_app(settings_for()) as client:
        body = client.get(f"/leads/{between[0][0]}/score").json()
    assert (body["label"], body["tier"]) == ("low", "B")
    assert body["scored_at"] == "2026-12-01T00:00:00+00:00"
