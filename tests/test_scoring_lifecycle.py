"""Lead scores over a pipeline's life, with write-back to a local fake HubSpot portal: the retrain
pushes every open lead's score, a second scoring pushes none, new landing data whose candidate
the promotion gate refuses is still scored (by the champion, through the automation sensor's
condition) and only the new leads are pushed, and a write-back HubSpot stops fails its step.

The fake is a real HTTP server honouring HubSpot's documented contract (tests/integration/
hubspot_fake.py); the pipeline, DuckDB, dbt, MLflow and the snapshot are the real ones.
"""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest
from integration.hubspot_fake import FakeHubSpot
from pipeline_runner import new_pipeline, training_run_config

from leadscore_assets.crm.hubspot import HubSpotClient
from leadscore_assets.crm.sync import contact_properties
from leadscore_assets.defs.scoring.assets import LEAD_SCORES_KEY
from leadscore_assets.defs.scoring.tables import LEAD_SCORE_HISTORY_TABLE, LEAD_SCORES_TABLE
from leadscore_assets.demo.files import write_landing
from leadscore_assets.demo.generator import generate
from leadscore_assets.settings import REGISTERED_MODEL_NAME
from leadscore_core.lead_scores import open_snapshot

pytestmark = pytest.mark.slow

TOKEN = "pat-na1-lifecycle-token"
CRM_SYNC_KEY = dg.AssetKey("crm_sync")
# Smaller than the other pipeline tests' data: enough leads for the gate, fewer to score and push.
LEADS = 3_000
NEW_LEADS = 1_000
NEW_FIRST_CONTACT_ID = 1_000_001
CHAMPION = f"{REGISTERED_MODEL_NAME}/1"


@pytest.fixture(scope="module")
def portal():
    """A portal holding the contacts of both landing batches, with the properties created."""
    contact_ids = [
        *map(str, range(1, LEADS + 1)),
        *map(str, range(NEW_FIRST_CONTACT_ID, NEW_FIRST_CONTACT_ID + NEW_LEADS)),
    ]
    fake = FakeHubSpot(TOKEN, contact_ids).start()
    try:
        with HubSpotClient(token=TOKEN, base_url=fake.base_url) as client:
            client.create_properties()
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, portal):
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("LEADSCORE_HUBSPOT_TOKEN", TOKEN)
        environment.setenv("LEADSCORE_HUBSPOT_BASE_URL", portal.base_url)
        environment.setenv("LEADSCORE_HUBSPOT_BACKOFF_SECONDS", "0.01")
        pipeline = new_pipeline(tmp_path_factory.mktemp("scoring-lifecycle"), synthetic_leads=LEADS)
        pipeline.first = pipeline.run()
        assert pipeline.first.success, pipeline.failure_messages(pipeline.first)
        yield pipeline
    pipeline.instance.dispose()


def _write_back(pipeline, result) -> dict[str, object]:
    metadata = pipeline.materialization(result, "crm_sync").metadata
    return {name: value.value for name, value in metadata.items()}


def _score_leads(pipeline, *keys: dg.AssetKey) -> dg.ExecuteInProcessResult:
    """A run of the scoring assets alone, as the automation sensor launches it."""
    job = pipeline.definitions.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=pipeline.instance, asset_selection=list(keys), raise_on_error=False
    )


def _latest_scores(pipeline) -> dict[str, str]:
    with duckdb.connect(str(pipeline.settings.warehouse_path), read_only=True) as connection:
        rows = connection.execute(f"SELECT contact_id, model_version FROM {LEAD_SCORES_TABLE}")
        return dict(rows.fetchall())


def test_a_pipeline_run_pushes_every_open_lead_s_score(pipeline, portal):
    report = _write_back(pipeline, pipeline.first)
    snapshot = open_snapshot(pipeline.settings.published_lead_scores_path)
    assert report["status"] == "pushed"
    assert (report["pushed"], report["failed"], report["unchanged"]) == (len(snapshot), 0, 0)
    assert report["calls"] == -(-len(snapshot) // 100), "batches of at most 100"
    for lead in snapshot:
        assert portal.contacts[lead.contact_id] == contact_properties(lead)
    scored = {lead.contact_id for lead in snapshot}
    assert all(not values for cid, values in portal.contacts.items() if cid not in scored)


def test_a_second_run_pushes_nothing(pipeline, portal):
    calls_before = len(portal.batch_calls())
    result = _score_leads(pipeline, LEAD_SCORES_KEY, CRM_SYNC_KEY)
    assert result.success, pipeline.failure_messages(result)
    report = _write_back(pipeline, result)
    assert (report["pushed"], report["failed"]) == (0, 0)
    assert report["unchanged"] == len(_latest_scores(pipeline))
    assert len(portal.batch_calls()) == calls_before


def test_new_leads_are_scored_by_the_champion_when_the_candidate_is_refused(pipeline, portal):
    definitions = pipeline.definitions
    ticks = dg.evaluate_automation_conditions(defs=definitions, instance=pipeline.instance)
    assert ticks.total_requested == 0
    before = _latest_scores(pipeline)

    settings = pipeline.settings
    write_landing(
        generate(NEW_LEADS, seed=11, first_contact_id=NEW_FIRST_CONTACT_ID),
        settings.landing_dir,
        batch="2026-12",
    )
    refused = pipeline.run(training_run_config(shuffle_labels=True))
    assert not refused.success
    assert not pipeline.check_results(refused)["promotion_gate"].passed
    materialised = {e.asset_key for e in refused.get_asset_materialization_events()}
    assert dg.AssetKey(["marts", "fct_lead_scoring_features"]) in materialised
    assert LEAD_SCORES_KEY not in materialised, "the refused run stops before scoring"

    ticks = dg.evaluate_automation_conditions(
        defs=definitions, instance=pipeline.instance, cursor=ticks.cursor
    )
    requested = {key for key in (LEAD_SCORES_KEY, CRM_SYNC_KEY) if ticks.get_num_requested(key)}
    assert requested == {LEAD_SCORES_KEY, CRM_SYNC_KEY}
    assert ticks.total_requested == 2

    rescored = _score_leads(pipeline, *requested)
    assert rescored.success, pipeline.failure_messages(rescored)
    after = _latest_scores(pipeline)
    new_open_leads = set(after) - set(before)
    assert new_open_leads and all(int(cid) >= NEW_FIRST_CONTACT_ID for cid in new_open_leads)
    assert set(before) <= set(after)
    assert set(after.values()) == {CHAMPION}, "scored by the model being served"
    report = _write_back(pipeline, rescored)
    assert (report["pushed"], report["failed"]) == (len(new_open_leads), 0)
    assert report["unchanged"] == len(before)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        runs = connection.execute(
            f"SELECT count(DISTINCT scoring_run_id) FROM {LEAD_SCORE_HISTORY_TABLE}"
        ).fetchone()[0]
    assert runs == 3

    ticks = dg.evaluate_automation_conditions(
        defs=definitions, instance=pipeline.instance, cursor=ticks.cursor
    )
    assert ticks.total_requested == 0, "rescored once"


def test_a_write_back_that_stops_fails_its_step_and_the_next_run_catches_up(
    pipeline, portal, tmp_path, monkeypatch
):
    # A portal this pipeline never wrote to: every lead must be pushed, and HubSpot is down.
    monkeypatch.setenv("LEADSCORE_HUBSPOT_LEDGER_PATH", str(tmp_path / "other-portal.sqlite"))
    monkeypatch.setenv("LEADSCORE_HUBSPOT_MAX_ATTEMPTS", "2")
    portal.trouble(503, times=2)
    failed = _score_leads(pipeline, CRM_SYNC_KEY)
    assert not failed.success
    message = pipeline.failure_messages(failed)
    assert "HubSpot write-back stopped early" in message and "failed 2 times" in message

    recovered = _score_leads(pipeline, CRM_SYNC_KEY)
    assert recovered.success, pipeline.failure_messages(recovered)
    report = _write_back(pipeline, recovered)
    assert (report["pushed"], report["failed"]) == (len(_latest_scores(pipeline)), 0)
