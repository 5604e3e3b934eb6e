"""The daily schedule and the landing sensor, evaluated the way the Dagster daemon does."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import (
    AssetMaterialization,
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
)

from leadscore_assets.definitions import build_definitions
from leadscore_assets.defs.ingestion.folder import discover, files_digest
from leadscore_assets.demo.files import write_landing
from leadscore_assets.demo.generator import generate
from leadscore_assets.settings import PipelineSettings


@pytest.fixture
def settings(tmp_path):
    return PipelineSettings(data_dir=tmp_path)


@pytest.fixture
def instance(tmp_path):
    (tmp_path / "dagster").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "dagster")) as instance:
        yield instance


def _sensor(settings):
    return build_definitions(settings).get_repository_def().get_sensor_def("new_landing_files")


def _evaluate(sensor, instance, cursor):
    context = build_sensor_context(instance=instance, cursor=cursor)
    result = sensor(context)
    return result, context.cursor


def test_schedule_requests_a_retrain_run(settings):
    schedule = build_definitions(settings).get_repository_def().get_schedule_def("daily_retrain")
    assert schedule.job_name == "retrain_job"
    context = build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 11, 26, 6, 0, tzinfo=dt.UTC)
    )
    requests = list(schedule.evaluate_tick(context).run_requests)
    assert len(requests) == 1 and isinstance(requests[0], RunRequest)


def test_sensor_skips_when_landing_is_empty(settings, instance):
    result, _ = _evaluate(_sensor(settings), instance, None)
    assert isinstance(result, SkipReason)
    assert "no data files" in result.skip_message


def test_sensor_new_same_changed_and_partial_files(settings, instance):
    sensor = _sensor(settings)
    write_landing(generate(300, 1), settings.landing_dir)

    first, cursor = _evaluate(sensor, instance, None)
    assert isinstance(first, RunRequest)
    assert first.job_name in (None, "retrain_job")
    assert first.run_key.startswith("landing-")

    again, cursor = _evaluate(sensor, instance, cursor)
    assert isinstance(again, SkipReason), "the same files must not start another run"

    (settings.landing_dir / "crm_deals_next.csv.part").write_text("deal_id,contact_id\n")
    partial, cursor = _evaluate(sensor, instance, cursor)
    assert isinstance(partial, SkipReason), "a file still being written is ignored"

    write_landing(generate(300, 2, first_contact_id=1_000), settings.landing_dir, batch="b2")
    changed, cursor = _evaluate(sensor, instance, cursor)
    assert isinstance(changed, RunRequest)
    assert changed.run_key != first.run_key

    deals = settings.landing_dir / "crm_deals_b2.csv"
    deals.write_text(deals.read_text() + "999999999,1000,open,10.0,\n")
    edited, _ = _evaluate(sensor, instance, cursor)
    assert isinstance(edited, RunRequest)
    assert edited.run_key not in (first.run_key, changed.run_key)


def test_sensor_waits_until_every_table_has_a_file(settings, instance):
    write_landing(generate(300, 1), settings.landing_dir)
    (settings.landing_dir / "crm_deals.csv").unlink()
    result, _ = _evaluate(_sensor(settings), instance, None)
    assert isinstance(result, SkipReason)
    assert "crm_deals" in result.skip_message


def test_sensor_skips_files_that_were_already_loaded(settings, instance):
    write_landing(generate(300, 1), settings.landing_dir)
    digest = files_digest(discover(settings.landing_dir))
    # What a successful load into raw.* records.
    instance.report_runless_asset_event(
        AssetMaterialization(["raw", "crm_contacts"], metadata={"files_digest": digest})
    )
    result, cursor = _evaluate(_sensor(settings), instance, None)
    assert isinstance(result, SkipReason)
    assert "already loaded" in result.skip_message
    assert cursor == digest
