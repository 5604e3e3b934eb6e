"""The pipeline's lead scores, end to end: `retrain_job` scores every open lead of the mart, and
the real API serving the published model and snapshot gives each of them, by contact id, exactly
the score `POST /score` gives for its features, which is the row in `marts.lead_scores`."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pandas as pd
import pytest
from api.support import running_app

from leadscore_api.settings import ApiSettings
from leadscore_assets.defs.scoring.open_leads import OPEN_OUTCOMES, open_leads_query
from leadscore_assets.defs.scoring.tables import LEAD_SCORE_HISTORY_TABLE, LEAD_SCORES_TABLE
from leadscore_assets.defs.warehouse.assets import MART_TABLE
from leadscore_core.features import INPUT_FIELDS

pytestmark = pytest.mark.slow


def _query(pipeline, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(pipeline.settings.warehouse_path), read_only=True) as connection:
        return connection.execute(sql).df()


@pytest.fixture(scope="module")
def open_leads(trained_pipeline) -> pd.DataFrame:
    return _query(trained_pipeline, open_leads_query())


@pytest.fixture(scope="module")
def stored(trained_pipeline) -> pd.DataFrame:
    return _query(trained_pipeline, f"SELECT * FROM {LEAD_SCORES_TABLE}").set_index("contact_id")


def _request_body(lead: pd.Series) -> dict[str, object]:
    """The lead's input fields as a caller of `POST /score` sends them (null when missing)."""
    body: dict[str, object] = {}
    for field in INPUT_FIELDS:
        value = lead[field.name]
        if pd.isna(value):
            body[field.name] = None
        elif field.kind == "bool":
            body[field.name] = bool(value)
        elif field.kind == "category":
            body[field.name] = str(value)
        else:
            body[field.name] = value.item() if hasattr(value, "item") else value
    return body


def test_every_open_lead_and_only_those_is_scored_once(trained_pipeline, open_leads, stored):
    outcomes = _query(trained_pipeline, f"SELECT contact_id, outcome FROM {MART_TABLE}")
    expected = {str(c) for c in outcomes[outcomes.outcome.isin(OPEN_OUTCOMES)].contact_id}
    assert len(expected) == len(open_leads) > 1000
    assert set(stored.index) == expected
    assert set(outcomes.outcome) > set(OPEN_OUTCOMES), "won and lost leads are not scored"
    history = _query(
        trained_pipeline,
        f"SELECT scoring_run_id, count(*) AS n FROM {LEAD_SCORE_HISTORY_TABLE} GROUP BY ALL",
    )
    assert history.to_dict("records") == [
        {"scoring_run_id": trained_pipeline.result.run_id, "n": len(expected)}
    ]


def test_the_api_answers_each_open_lead_with_the_score_post_score_gives(
    trained_pipeline, open_leads, stored
):
    settings = ApiSettings(
        data_dir=trained_pipeline.settings.data_dir, api_key=None, model_poll_seconds=0.05
    )
    with running_app(settings) as client:
        served = client.get("/model").json()["model_version"]
        assert set(stored.model_version) == {served}
        for lead in open_leads.itertuples(index=False):
            lead = pd.Series(lead._asdict())
            contact_id = str(lead["contact_id"])
            live = client.post("/score?explain=true", json=_request_body(lead))
            by_id = client.get(f"/leads/{contact_id}/score")
            assert live.status_code == by_id.status_code == 200, (live.text, by_id.text)
            live, by_id, row = live.json(), by_id.json(), stored.loc[contact_id]
            assert live["score"] == by_id["score"] == row["score"], contact_id
            assert live["label"] == by_id["label"] == row["label"]
            assert by_id["tier"] == row["tier"]
            assert live["reasons"] == by_id["reasons"] == json.loads(row["reasons"])
            assert by_id["model_version"] == row["model_version"] == served
            assert datetime.fromisoformat(by_id["features_as_of"]) == row["features_as_of"]
            assert datetime.fromisoformat(by_id["scored_at"]) == row["scored_at"]
            assert by_id["email"] == (None if pd.isna(row["email"]) else row["email"])


def test_the_ui_shows_what_was_scored_with_which_model_and_when(trained_pipeline, stored):
    metadata = {
        name: value.value
        for name, value in trained_pipeline.materialization(
            trained_pipeline.result, "lead_scores"
        ).metadata.items()
    }
    assert metadata["dagster/row_count"] == len(stored)
    assert sum(metadata["leads_by_tier"].values()) == len(stored)
    assert list(metadata["leads_by_tier"]) == ["A", "B", "C", "D"]
    assert (
        metadata["leads_by_tier"]
        == stored.tier.value_counts().reindex(["A", "B", "C", "D"], fill_value=0).to_dict()
    )
    assert metadata["leads_by_label"]["high"] == metadata["leads_by_tier"]["A"]
    assert metadata["model_version"] == stored.model_version.iloc[0]
    assert metadata["scored_at"] == stored.scored_at.iloc[0].timestamp()
    assert datetime.fromisoformat(metadata["features_as_of_latest"]) == stored.features_as_of.max()
    assert set(metadata["stage_seconds"]) >= {"read_mart", "predict", "explain", "write_tables"}


def test_write_back_is_skipped_with_a_note_without_a_token(trained_pipeline):
    metadata = trained_pipeline.materialization(trained_pipeline.result, "crm_sync").metadata
    assert metadata["status"].value == "skipped"
    assert "LEADSCORE_HUBSPOT_TOKEN is not set" in metadata["note"].value
