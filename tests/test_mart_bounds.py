"""The mart enforces the API's bounds: training never holds a value `/score` would refuse."""

from __future__ import annotations

import pandas as pd
import pytest
from pipeline_runner import new_pipeline

from leadscore_assets.demo.files import write_landing
from leadscore_assets.demo.generator import generate
from leadscore_core.features import INPUT_FIELDS_BY_NAME

pytestmark = pytest.mark.slow


def test_a_value_the_api_would_refuse_stops_the_build_before_training(tmp_path):
    pipeline = new_pipeline(tmp_path)
    landing = pipeline.settings.landing_dir
    write_landing(generate(2_000, 4), landing)
    contacts = pd.read_csv(landing / "crm_contacts.csv", dtype=str)
    sessions = pd.read_csv(landing / "ga4_sessions.csv", dtype=str)
    visitor = contacts.loc[0, "visitor_id"]
    first_visit = sessions.index[sessions["user_pseudo_id"] == visitor][0]
    too_many = int(INPUT_FIELDS_BY_NAME["page_views"].max_value) + 1
    sessions.loc[first_visit, "page_views"] = str(too_many)
    sessions.to_csv(landing / "ga4_sessions.csv", index=False)

    result = pipeline.run()

    assert not result.success
    checks = pipeline.check_results(result)
    bound = checks["within_input_bounds_fct_lead_scoring_features_page_views"]
    assert not bound.passed
    materialised = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "lead_scoring_model" not in materialised
    assert not pipeline.settings.published_model_path.exists()
    pipeline.instance.dispose()
