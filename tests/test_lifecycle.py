"""A model's life on one data directory: first champion, a rejected landing file, a worse
challenger the gate blocks, then new data that produces a better champion the running API picks up.
"""

from __future__ import annotations

import json
import shutil

import duckdb
import httpx
import pandas as pd
import pytest
from dagster import AssetKey, RunRequest, SkipReason, build_sensor_context
from integration.processes import start_scoring_api, wait_until
from mlflow import MlflowClient
from pipeline_runner import new_pipeline, training_run_config

from leadscore_assets.demo.files import write_landing
from leadscore_assets.demo.generator import generate
from leadscore_assets.settings import REGISTERED_MODEL_NAME
from leadscore_core.features import EXAMPLE_LEAD

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    pipeline = new_pipeline(tmp_path_factory.mktemp("lifecycle"))
    first = pipeline.run()
    assert first.success, pipeline.failure_messages(first)
    pipeline.first_features_csv = pipeline.settings.features_csv_path.read_bytes()
    yield pipeline
    pipeline.instance.dispose()


def _registry(pipeline):
    return MlflowClient(tracking_uri=pipeline.settings.tracking_uri)


def _champion_version(pipeline) -> str:
    champion = _registry(pipeline).get_model_version_by_alias(REGISTERED_MODEL_NAME, "champion")
    return str(champion.version)


def _raw_tables(pipeline) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(pipeline.settings.warehouse_path), read_only=True) as conn:
        return {
            t: conn.execute(f"SELECT * FROM raw.{t} ORDER BY ALL").df()
            for t in ("ga4_sessions", "crm_contacts", "crm_deals")
        }


def test_first_run_promotes_when_the_floor_holds(pipeline):
    assert _champion_version(pipeline) == "1"
    published = json.loads(pipeline.settings.published_model_path.read_bytes())
    assert published["learner"]["attributes"]["leadscore_metadata"]


def test_malformed_landing_file_is_quarantined_and_nothing_is_lost(pipeline):
    settings = pipeline.settings
    published_before = settings.published_model_path.read_bytes()
    raw_before = _raw_tables(pipeline)
    versions_before = len(
        _registry(pipeline).search_model_versions(f"name='{REGISTERED_MODEL_NAME}'")
    )
    bad = settings.landing_dir / "crm_deals_late.csv"
    bad.write_text("deal_id,contact_id,stage,closed_at\n1,1,closed_won,not-a-date\n")

    result = pipeline.run()

    assert not result.success
    message = pipeline.failure_messages(result)
    assert "crm_deals_late.csv" in message and "closed_at" in message
    assert not bad.exists()
    quarantined = list((settings.landing_dir / "quarantine").glob("*crm_deals_late.csv"))
    assert len(quarantined) == 1
    reason = quarantined[0].with_name(quarantined[0].name + ".reason.txt").read_text()
    assert "closed_at" in reason
    for table, frame in _raw_tables(pipeline).items():
        pd.testing.assert_frame_equal(frame, raw_before[table])
    assert settings.published_model_path.read_bytes() == published_before
    versions_after = len(
        _registry(pipeline).search_model_versions(f"name='{REGISTERED_MODEL_NAME}'")
    )
    assert versions_after == versions_before


def _evaluate_sensor(pipeline, cursor):
    sensor = pipeline.definitions.get_repository_def().get_sensor_def("new_landing_files")
    context = build_sensor_context(instance=pipeline.instance, cursor=cursor)
    return sensor(context), context.cursor


def test_a_rejected_file_makes_one_failed_run_and_then_the_sensor_skips(pipeline):
    """The quarantine puts the landing folder back as it was loaded: nothing new to train on."""
    after_last_rejection, cursor = _evaluate_sensor(pipeline, None)
    assert isinstance(after_last_rejection, SkipReason), "the quarantined file's run already ran"
    (pipeline.settings.landing_dir / "crm_contacts_extra.csv").write_text(
        "contact_id,email,visitor_id,created_at\n1,a@example.com,v1,never\n"
    )
    request, cursor = _evaluate_sensor(pipeline, cursor)
    assert isinstance(request, RunRequest)
    assert not pipeline.run().success
    after, _ = _evaluate_sensor(pipeline, cursor)
    assert isinstance(after, SkipReason), "the same landing data must not start a second run"
    assert "already loaded" in after.skip_message


def test_worse_challenger_is_registered_but_not_promoted(pipeline):
    published_before = pipeline.settings.published_model_path.read_bytes()
    result = pipeline.run(training_run_config(shuffle_labels=True))

    assert not result.success, "a failed blocking check fails the run"
    gate = pipeline.check_results(result)["promotion_gate"]
    assert not gate.passed
    numbers = {k: v.value for k, v in gate.metadata.items()}
    assert numbers["champion_version"] == "1"
    assert numbers["head_to_head_rows"] == numbers["holdout_rows"], "same data, same split"
    assert numbers["challenger_auc_vs_champion"] < numbers["champion_auc"] - 0.005
    assert numbers["challenger_auc"] < 0.6, "shuffled labels leave nothing to learn"
    registry = _registry(pipeline)
    challenger = registry.get_model_version_by_alias(REGISTERED_MODEL_NAME, "challenger")
    assert str(challenger.version) == "2"
    assert _champion_version(pipeline) == "1"
    assert registry.get_run(challenger.run_id).data.tags["promotion_gate"] == "failed"
    assert pipeline.settings.published_model_path.read_bytes() == published_before
    materialised = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "lead_scoring_model" in materialised and "published_model" not in materialised


def test_the_same_inputs_give_the_same_training_csv_bytes(pipeline):
    """The landing data is what the first run loaded (the bad files went to quarantine), and the
    last run rebuilt the mart and exported it again: the file's sha256 is a real data version."""
    assert pipeline.settings.features_csv_path.read_bytes() == pipeline.first_features_csv


def test_publishing_on_its_own_cannot_bypass_the_gate(pipeline):
    """`published_model` alone loads the latest candidate (the refused lead_scoring/2) and
    refuses it, quoting the gate."""
    published_before = pipeline.settings.published_model_path.read_bytes()
    job = pipeline.definitions.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=pipeline.instance,
        asset_selection=[AssetKey("published_model")],
        raise_on_error=False,
    )
    assert not result.success
    message = pipeline.failure_messages(result)
    assert f"{REGISTERED_MODEL_NAME}/2 is not published" in message
    assert "not promoted: ROC AUC" in message
    assert _champion_version(pipeline) == "1"
    assert pipeline.settings.published_model_path.read_bytes() == published_before


@pytest.fixture
def running_api(pipeline, tmp_path):
    process, base_url = start_scoring_api(
        {
            "LEADSCORE_MODEL_PATH": str(pipeline.settings.published_model_path),
            "LEADSCORE_MODEL_POLL_SECONDS": "0.5",
        },
        log_path=tmp_path / "api.log",
    )
    try:
        yield base_url
    finally:
        process.stop()


def _served_version(base: str) -> str:
    return httpx.get(f"{base}/model", timeout=5).json()["model_version"]


def test_new_landing_batch_trains_a_new_champion_that_the_api_serves(pipeline, running_api):
    settings = pipeline.settings
    assert _served_version(running_api) == f"{REGISTERED_MODEL_NAME}/1"

    write_landing(
        generate(settings.synthetic_leads, seed=7, first_contact_id=1_000_001),
        settings.landing_dir,
        batch="2026-11",
    )
    sensor = pipeline.definitions.get_repository_def().get_sensor_def("new_landing_files")
    request = sensor(build_sensor_context(instance=pipeline.instance))
    assert isinstance(request, RunRequest)

    result = pipeline.run()
    assert result.success, pipeline.failure_messages(result)
    assert pipeline.check_results(result)["promotion_gate"].passed
    champion = _champion_version(pipeline)
    assert champion == "3"
    expected = f"{REGISTERED_MODEL_NAME}/{champion}"
    wait_until(
        lambda: True if _served_version(running_api) == expected else None,
        timeout=5,
        what=f"the running API to serve {expected}",
    )
    model = httpx.get(f"{running_api}/model", timeout=5).json()
    assert model["training_data"]["rows"] == 2 * settings.synthetic_leads
    scored = httpx.post(
        f"{running_api}/score",
        json=EXAMPLE_LEAD,
        timeout=5,
    ).json()
    assert scored["model_version"] == expected


@pytest.mark.parametrize("blocked", ["model_card.md", "lead_scoring_model.json"])
def test_a_failed_publish_leaves_the_champion_alias_and_the_served_files(pipeline, blocked):
    """The registry's champion must always be the model being served: when replacing a published
    file fails, the alias stays and the files already replaced are put back."""
    settings = pipeline.settings
    served = {p: p.read_bytes() for p in settings.models_dir.iterdir() if p.is_file()}
    champion_before = _champion_version(pipeline)
    obstacle = settings.models_dir / blocked
    obstacle.unlink()
    obstacle.mkdir()  # a directory where the file should go: the atomic rename fails
    (obstacle / "keep").touch()
    try:
        result = pipeline.run()
    finally:
        shutil.rmtree(obstacle)
        obstacle.write_bytes(served[obstacle])

    assert not result.success
    assert pipeline.check_results(result)["promotion_gate"].passed, "the candidate was good"
    assert blocked in pipeline.failure_messages(result)
    assert _champion_version(pipeline) == champion_before
    for path, data in served.items():
        if path != obstacle:
            assert path.read_bytes() == data, f"{path.name} was not put back"
