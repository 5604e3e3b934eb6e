"""Write-back to HubSpot, against a local fake that honours HubSpot's documented contract.

The scores come from a real snapshot of a real model's scores; the fake is a real HTTP server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api.support import sample_leads
from integration.hubspot_fake import BATCH_UPDATE_PATH, FakeHubSpot
from lead_scores_factory import score_open_leads
from model_factory import train_model_file
from pydantic import SecretStr

from leadscore_assets.crm.hubspot import (
    LEADSCORE_PROPERTIES,
    HubSpotClient,
    HubSpotSettings,
)
from leadscore_assets.crm.sync import (
    LedgerBusy,
    PushLedger,
    SyncReport,
    contact_properties,
    sync_lead_scores,
)
from leadscore_core.artifact import load_model
from leadscore_core.lead_scores import LeadScoresSnapshot, open_snapshot, write_snapshot

TOKEN = "pat-na1-test-token"
LEADS = sample_leads(240)  # 242 leads: three batches of at most 100
CONTACT_IDS = [str(5001 + i) for i in range(len(LEADS))]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory):
    return load_model(train_model_file(tmp_path_factory.mktemp("crm") / "model.json", seed=2))


@pytest.fixture
def snapshot_path(tmp_path: Path, model) -> Path:
    path = tmp_path / "data" / "models" / "lead_scores.sqlite"
    write_snapshot(path, score_open_leads(model, LEADS, CONTACT_IDS))
    return path


@pytest.fixture
def portal() -> Iterator[FakeHubSpot]:
    """A portal holding every contact, with the leadscore properties created through the API."""
    fake = FakeHubSpot(TOKEN, CONTACT_IDS).start()
    try:
        with HubSpotClient(token=TOKEN, base_url=fake.base_url) as client:
            client.create_properties()
        fake.calls.clear()
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def settings(tmp_path: Path, portal: FakeHubSpot) -> HubSpotSettings:
    return HubSpotSettings(
        data_dir=tmp_path / "data",
        hubspot_token=TOKEN,
        hubspot_base_url=portal.base_url,
        hubspot_backoff_seconds=0.05,
    )


def run_sync(settings: HubSpotSettings, snapshot_path: Path, **options: Any) -> SyncReport:
    snapshot = open_snapshot(snapshot_path)
    with (
        PushLedger.locked(settings.ledger_path) as ledger,
        HubSpotClient.from_settings(settings) as client,
    ):
        return sync_lead_scores(snapshot, ledger, client, **options)


def pushed_ids(portal: FakeHubSpot, since: int = 0) -> list[str]:
    return [
        item["id"]
        for call in portal.batch_calls()[since:]
        if call.status in (200, 207)
        for item in call.body["inputs"]
    ]


def assert_portal_holds(portal: FakeHubSpot, snapshot: LeadScoresSnapshot) -> None:
    for lead in snapshot:
        record = portal.contacts[lead.contact_id]
        assert record == contact_properties(lead)


def test_a_first_run_pushes_every_score_in_batches_of_at_most_100(
    settings, snapshot_path, portal
) -> None:
    report = run_sync(settings, snapshot_path)
    assert (report.pushed, report.unchanged, report.failed) == (len(LEADS), 0, 0)
    assert report.ok and report.retries == {}
    calls = portal.batch_calls()
    assert [len(call.body["inputs"]) for call in calls] == [100, 100, 42]
    assert sorted(pushed_ids(portal)) == sorted(CONTACT_IDS)
    snapshot = open_snapshot(snapshot_path)
    assert_portal_holds(portal, snapshot)
    lead = snapshot.by_contact_id("5001")
    assert lead is not None
    record = portal.contacts["5001"]
    assert float(record["leadscore_score"]) == pytest.approx(lead.score, abs=1e-6)
    assert record["leadscore_tier"] == lead.tier
    assert record["leadscore_reasons"].splitlines() == [r["text"] for r in lead.reasons]
    assert record["leadscore_model_version"] == "test/1"


def test_a_second_run_pushes_nothing(settings, snapshot_path, portal) -> None:
    run_sync(settings, snapshot_path)
    calls_before = len(portal.calls)
    report = run_sync(settings, snapshot_path)
    assert (report.pushed, report.unchanged, report.failed) == (0, len(LEADS), 0)
    assert len(portal.calls) == calls_before


def test_a_changed_score_is_pushed_alone(settings, snapshot_path, portal, model) -> None:
    run_sync(settings, snapshot_path)
    changed = [dict(lead) for lead in LEADS]
    changed[7] = {**changed[7], "sessions": 40, "engaged_sessions": 30, "page_views": 400}
    write_snapshot(snapshot_path, score_open_leads(model, changed, CONTACT_IDS))
    before = open_snapshot(snapshot_path).by_contact_id(CONTACT_IDS[7])
    assert before is not None
    batches_before = len(portal.batch_calls())
    report = run_sync(settings, snapshot_path)
    assert (report.pushed, report.unchanged) == (1, len(LEADS) - 1)
    assert pushed_ids(portal, since=batches_before) == [CONTACT_IDS[7]]
    assert portal.contacts[CONTACT_IDS[7]] == contact_properties(before)


def test_rate_limits_are_waited_out_as_retry_after_says(settings, snapshot_path, portal) -> None:
    portal.trouble(429, times=2, retry_after=1)
    report = run_sync(settings, snapshot_path)
    assert report.ok and report.pushed == len(LEADS)
    assert report.retries == {"rate limit": 2}
    limited, retried, after = portal.calls[:3]
    assert (limited.status, retried.status, after.status) == (429, 429, 200)
    # Retry-After: 1 was honoured, not the 0.05 s backoff of the settings.
    assert retried.at - limited.at >= 1.0 and after.at - retried.at >= 1.0
    assert_portal_holds(portal, open_snapshot(snapshot_path))


def test_server_errors_are_retried_with_backoff(settings, snapshot_path, portal) -> None:
    portal.trouble(503, times=2)
    portal.trouble(500, times=1)
    report = run_sync(settings, snapshot_path)
    assert report.ok and report.pushed == len(LEADS)
    assert report.retries == {"server error": 3}
    assert [call.status for call in portal.calls[:4]] == [503, 503, 500, 200]


def test_a_contact_missing_from_the_portal_is_reported_and_retried_next_run(
    settings, snapshot_path, portal
) -> None:
    gone = CONTACT_IDS[150]
    del portal.contacts[gone]
    report = run_sync(settings, snapshot_path)
    assert (report.pushed, report.failed) == (len(LEADS) - 1, 1)
    assert not report.ok and report.stopped is None
    assert report.failures[gone].startswith("OBJECT_NOT_FOUND: Could not get some CONTACT objects")
    assert report.as_dict()["failures_by_reason"] == {report.failures[gone]: 1}
    assert [call.status for call in portal.batch_calls()] == [200, 207, 200]

    batches_before = len(portal.batch_calls())
    again = run_sync(settings, snapshot_path)
    assert (again.pushed, again.unchanged, again.failed) == (0, len(LEADS) - 1, 1)
    assert [call.body["inputs"][0]["id"] for call in portal.batch_calls()[batches_before:]] == [
        gone
    ]

    portal.contacts[gone] = {}  # the contact is restored in HubSpot
    last = run_sync(settings, snapshot_path)
    assert (last.pushed, last.failed) == (1, 0)


def test_hubspot_staying_down_stops_the_run_and_the_next_run_catches_up(
    tmp_path, snapshot_path, portal
) -> None:
    settings = HubSpotSettings(
        data_dir=tmp_path / "data",
        hubspot_token=TOKEN,
        hubspot_base_url=portal.base_url,
        hubspot_backoff_seconds=0.01,
        hubspot_max_attempts=3,
    )
    portal.trouble(500, times=3)  # every attempt of the first batch
    report = run_sync(settings, snapshot_path)
    assert report.pushed == 0 and report.failed == len(LEADS)
    assert report.stopped is not None and "failed 3 times" in report.stopped
    assert report.retries == {"server error": 2} and len(portal.calls) == 3
    recovered = run_sync(settings, snapshot_path)
    assert recovered.ok and recovered.pushed == len(LEADS)


def test_the_daily_limit_is_not_retried(settings, snapshot_path, portal) -> None:
    portal.trouble(429, times=1, policy="DAILY")
    report = run_sync(settings, snapshot_path)
    assert report.stopped is not None and "daily limit" in report.stopped
    assert len(portal.calls) == 1 and report.pushed == 0


def test_a_wrong_token_stops_the_run_naming_the_variable(settings, snapshot_path, portal) -> None:
    wrong = settings.model_copy(update={"hubspot_token": SecretStr("not-the-token")})
    report = run_sync(wrong, snapshot_path)
    assert report.stopped is not None
    assert (
        "INVALID_AUTHENTICATION" in report.stopped and "LEADSCORE_HUBSPOT_TOKEN" in report.stopped
    )
    assert report.pushed == 0 and report.failed == len(LEADS)
    assert run_sync(settings, snapshot_path).pushed == len(LEADS)  # nothing was recorded


def test_missing_properties_stop_the_run_saying_how_to_create_them(
    settings, snapshot_path, portal
) -> None:
    for definition in LEADSCORE_PROPERTIES:
        del portal.properties[definition["name"]]
    report = run_sync(settings, snapshot_path)
    assert report.stopped is not None
    assert "PROPERTY_DOESNT_EXIST" in report.stopped
    assert "leadscore crm create-properties" in report.stopped
    assert len(portal.batch_calls()) == 1


def test_creating_the_properties_is_idempotent(portal) -> None:
    with HubSpotClient(token=TOKEN, base_url=portal.base_url) as client:
        assert set(client.create_properties().values()) == {"exists"}
    tier = portal.properties["leadscore_tier"]
    assert (tier["type"], tier["groupName"]) == ("enumeration", "leadscore")
    assert [option["value"] for option in tier["options"]] == ["A", "B", "C", "D"]
    assert portal.properties["leadscore_score"]["type"] == "number"
    fresh = FakeHubSpot(TOKEN).start()
    try:
        with HubSpotClient(token=TOKEN, base_url=fresh.base_url) as client:
            created = client.create_properties()
        assert set(created.values()) == {"created"} and len(created) == 5
    finally:
        fresh.stop()


def test_a_dry_run_counts_without_calling_hubspot(tmp_path, snapshot_path) -> None:
    with PushLedger.locked(tmp_path / "ledger.sqlite") as ledger:
        report = sync_lead_scores(open_snapshot(snapshot_path), ledger, None, dry_run=True)
    assert (report.to_push, report.unchanged, report.pushed) == (len(LEADS), 0, 0)


def test_force_pushes_everything_again(settings, snapshot_path, portal) -> None:
    run_sync(settings, snapshot_path)
    assert run_sync(settings, snapshot_path, force=True).pushed == len(LEADS)


def test_one_run_at_a_time_per_ledger(tmp_path) -> None:
    path = tmp_path / "ledger.sqlite"
    with PushLedger.locked(path), pytest.raises(LedgerBusy, match="another write-back run"):
        with PushLedger.locked(path):
            pass


def test_the_fake_refuses_what_hubspot_refuses(portal) -> None:
    """The contract the tests above rely on: auth, batch size, duplicates, unknown properties."""
    inputs = [{"id": cid, "properties": {"firstname": "Ada"}} for cid in CONTACT_IDS[:101]]
    with httpx.Client(base_url=portal.base_url) as http:
        assert http.post(BATCH_UPDATE_PATH, json={"inputs": inputs[:1]}).status_code == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        too_many = http.post(BATCH_UPDATE_PATH, json={"inputs": inputs}, headers=auth)
        assert too_many.status_code == 400 and too_many.json()["category"] == "VALIDATION_ERROR"
        twice = http.post(BATCH_UPDATE_PATH, json={"inputs": inputs[:1] * 2}, headers=auth)
        assert twice.status_code == 400 and "Duplicate IDs" in twice.json()["message"]
        bad_tier = [{"id": CONTACT_IDS[0], "properties": {"leadscore_tier": "Z"}}]
        answer = http.post(BATCH_UPDATE_PATH, json={"inputs": bad_tier}, headers=auth)
        assert answer.status_code == 400 and "INVALID_OPTION" in answer.json()["message"]
        ok = http.post(BATCH_UPDATE_PATH, json={"inputs": inputs[:2]}, headers=auth)
        assert ok.status_code == 200 and len(ok.json()["results"]) == 2
        assert ok.headers["X-HubSpot-RateLimit-Max"] == "190"


def _cli(*arguments: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "leadscore"), "crm", *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_command_line_creates_properties_and_syncs(tmp_path, snapshot_path) -> None:
    fresh = FakeHubSpot(TOKEN, CONTACT_IDS).start()
    try:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LEADSCORE_")},
            "LEADSCORE_DATA_DIR": str(tmp_path / "data"),
            "LEADSCORE_HUBSPOT_BASE_URL": fresh.base_url,
        }
        dry = _cli("sync", "--dry-run", env=env)
        assert dry.returncode == 0, dry.stderr
        assert f"would push {len(LEADS)}, unchanged 0 (dry run)" in dry.stdout
        missing_token = _cli("sync", env=env)
        assert missing_token.returncode != 0 and "LEADSCORE_HUBSPOT_TOKEN" in missing_token.stderr
        env["LEADSCORE_HUBSPOT_TOKEN"] = TOKEN
        created = _cli("create-properties", env=env)
        assert created.returncode == 0, created.stderr
        assert "leadscore_score: created" in created.stdout
        synced = _cli("sync", "--json", env=env)
        assert synced.returncode == 0, synced.stderr
        assert json.loads(synced.stdout)["pushed"] == len(LEADS)
        again = _cli("sync", env=env)
        assert f"pushed 0, unchanged {len(LEADS)}, failed 0" in again.stdout
    finally:
        fresh.stop()
