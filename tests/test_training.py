"""Training on its own: honest splits, the seed baseline, users' own data, too little data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pipeline_runner import new_pipeline, training_run_config

from leadscore_api.main import create_app
from leadscore_api.settings import ApiSettings
from leadscore_assets.defs.training.candidate import HOLDOUT_FILE as CANDIDATE_HOLDOUT
from leadscore_assets.defs.training.training import (
    input_columns,
    read_features_csv,
    split_indices,
    train,
)
from leadscore_assets.demo.generator import generate
from leadscore_core.features import INPUT_FIELDS, LEAD_TIMESTAMP_COLUMN
from leadscore_core.predictor import TOLERANCE


@pytest.fixture(scope="module")
def features_frame(trained_pipeline):
    return read_features_csv(trained_pipeline.settings.features_csv_path)


def test_time_split_never_trains_on_a_lead_newer_than_the_test_set(features_frame):
    train_rows, test_rows = split_indices(features_frame, "time")
    created = features_frame[LEAD_TIMESTAMP_COLUMN]
    assert created.iloc[train_rows].max() <= created.iloc[test_rows].min()
    assert len(test_rows) == round(0.2 * len(features_frame))
    assert set(train_rows).isdisjoint(test_rows)


def test_random_split_is_the_seeds(features_frame):
    from sklearn.model_selection import train_test_split

    train_rows, test_rows = split_indices(features_frame, "random")
    expected_train, expected_test = train_test_split(
        np.arange(len(features_frame)), test_size=0.2, random_state=42
    )
    assert np.array_equal(train_rows, np.sort(expected_train))
    assert np.array_equal(test_rows, np.sort(expected_test))


def test_full_features_beat_the_seed_baseline_on_the_same_split(features_frame):
    channels = {"channel": sorted(set(features_frame["channel"]))}
    full = train(
        features_frame, feature_set="full", split="time", calibration="none", categories=channels
    )
    seed = train(
        features_frame, feature_set="seed", split="time", calibration="none", categories={}
    )
    from sklearn.metrics import roc_auc_score

    assert full.test_rows["contact_id"].equals(seed.test_rows["contact_id"])
    full_auc = roc_auc_score(full.test_rows["is_won"], full.test_rows["score"])
    seed_auc = roc_auc_score(seed.test_rows["is_won"], seed.test_rows["score"])
    assert full_auc > seed_auc
    assert seed.feature_names == ["sessions", "engaged_sessions", "page_views", "is_first_visit"]


def test_api_and_pipeline_give_identical_probabilities(trained_pipeline, tmp_path):
    """The pipeline's holdout scores (written at training time) equal what the API serves: to
    the last bit through XGBoost, and within the compiled predictor's tolerance through the
    library published beside the model, which the API serves by default."""
    settings = trained_pipeline.settings
    metadata = json.loads(
        json.loads(settings.published_model_path.read_text())["learner"]["attributes"][
            "leadscore_metadata"
        ]
    )
    assert metadata["feature_set"] == "full"
    holdout = pd.read_parquet(
        settings.candidates_dir / f"v{metadata['registered_model']['version']}" / CANDIDATE_HOLDOUT
    ).head(500)
    leads = []
    for row in holdout.itertuples():
        # A missing value (the demo has no contact attributes) is left out: unknown.
        lead = {
            f.name: getattr(row, f.name) for f in INPUT_FIELDS if not pd.isna(getattr(row, f.name))
        }
        lead["is_first_visit"] = bool(lead["is_first_visit"])
        for name in ("sessions", "engaged_sessions", "page_views", "distinct_channels"):
            lead[name] = int(lead[name])
        leads.append(lead)
    # The published file alone, without its compiled library beside it: XGBoost predicts.
    xgboost_only = tmp_path / "lead_scoring_model.json"
    xgboost_only.write_bytes(settings.published_model_path.read_bytes())
    for model_path, predictor, tolerance in (
        (settings.published_model_path, "compiled", TOLERANCE),
        (xgboost_only, "xgboost", 1e-9),
    ):
        app = create_app(ApiSettings(data_dir=settings.data_dir, model_path=model_path))
        with TestClient(app) as client:
            assert client.get("/ready").json()["predictor"] == predictor
            response = client.post("/score/batch", json={"leads": leads})
        assert response.status_code == 200, response.text
        served = np.array([r["score"] for r in response.json()["results"]])
        np.testing.assert_allclose(served, holdout["score"].to_numpy(), rtol=0, atol=tolerance)


def _user_exports(landing_dir):
    """A user's exports, not the generator's files: GA4 sessions as Parquet with extra columns
    and another column order, CRM exports as CSV with ISO-8601 'T' timestamps and offsets."""
    export = generate(3_000, 11)
    landing_dir.mkdir(parents=True)
    sessions = export.sessions.to_pandas()
    sessions["event_count"] = sessions["page_views"] * 3
    sessions = sessions[list(reversed(sessions.columns))]
    sessions.to_parquet(landing_dir / "ga4_sessions_export.parquet", index=False)
    contacts = export.contacts.to_pandas()
    contacts["created_at"] = (
        contacts["created_at"].dt.tz_convert("Europe/Berlin").map(lambda t: t.isoformat())
    )
    contacts["lifecycle_stage"] = "lead"
    contacts.to_csv(landing_dir / "crm_contacts_hubspot.csv", index=False)
    deals = export.deals.to_pandas()
    deals["closed_at"] = deals["closed_at"].map(lambda t: "" if pd.isna(t) else t.isoformat())
    deals.drop(columns=["amount"]).to_csv(landing_dir / "crm_deals_hubspot.csv", index=False)


@pytest.mark.slow
def test_users_own_exports_train_end_to_end(tmp_path):
    pipeline = new_pipeline(tmp_path, demo_mode=False)
    _user_exports(pipeline.settings.landing_dir)
    # The search's budget is a per-run override too.
    result = pipeline.run(
        training_run_config(split="time", tuning_trials=3, tuning_timeout_seconds=300)
    )
    assert result.success, pipeline.failure_messages(result)
    model = json.loads(
        json.loads(pipeline.settings.published_model_path.read_text())["learner"]["attributes"][
            "leadscore_metadata"
        ]
    )
    assert model["training_data"]["rows"] == 3_000
    assert model["split"] == "time"
    assert model["data_source"].startswith("landing exports (")
    assert model["metrics"]["roc_auc"] > 0.75
    assert (model["tuning"]["budget_trials"], model["tuning"]["budget_seconds"]) == (3, 300)
    assert model["tuning"]["trials"] == 3
    pipeline.instance.dispose()


@pytest.mark.slow
def test_too_little_data_warns_and_is_not_promoted(tmp_path):
    pipeline = new_pipeline(tmp_path, synthetic_leads=700)
    result = pipeline.run()
    assert not result.success
    gate = pipeline.check_results(result)["promotion_gate"]
    assert not gate.passed
    assert "700 leads" in gate.description
    warnings = pipeline.materialization(result, "lead_scoring_model").metadata["warnings"].value
    assert any("700 leads" in w for w in warnings)
    assert not pipeline.settings.published_model_path.exists()
    pipeline.instance.dispose()


def test_user_csv_missing_a_column_is_named(tmp_path):
    path = tmp_path / "features.csv"
    pd.DataFrame({"contact_id": [1], "email": ["a@example.com"]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="lacks column\\(s\\): lead_created_at, sessions"):
        read_features_csv(path)


def test_callers_sending_only_required_fields_still_get_calibrated_scores(features_frame):
    """Training blanks optional inputs on a share of rows, so the seed's five-field request is
    scored by trees that learned what missing means, not by arbitrary default branches."""
    from sklearn.metrics import roc_auc_score

    channels = {"channel": sorted(set(features_frame["channel"]))}
    trained = train(
        features_frame, feature_set="full", split="random", calibration="none", categories=channels
    )
    holdout = trained.test_rows
    required_only = holdout["score_required_inputs_only"]
    assert roc_auc_score(holdout["is_won"], required_only) > 0.8
    assert abs(required_only.mean() - holdout["is_won"].mean()) < 0.03


def test_a_features_csv_without_the_contact_attributes_reads_them_as_unknown(tmp_path):
    """A CSV exported before the contact attributes existed (a kept candidate's training file)."""
    path = tmp_path / "features.csv"
    path.write_text(
        "contact_id,email,lead_created_at,sessions,engaged_sessions,page_views,channel,"
        "is_first_visit,total_engagement_seconds,days_active_span,distinct_channels,is_won\n"
        "0042,a@example.com,2026-01-01 00:00:00+00,2,1,,Email,false,12.5,1.0,1,1\n"
    )
    frame = read_features_csv(path)
    assert frame["contact_id"].tolist() == ["0042"]  # text, leading zeros kept
    assert np.isnan(frame.loc[0, "page_views"])
    assert frame[["lead_source", "company_size"]].isna().all().all()
    columns = input_columns(frame)
    assert columns["lead_source"].tolist() == [None]


def test_lead_timestamps_with_and_without_fractional_seconds_read_alike(tmp_path):
    """DuckDB writes `10:00:00+00` for a whole second and `10:00:00.123+00` otherwise: a CRM
    export with millisecond times has both, in either order."""
    header = (
        "contact_id,email,lead_created_at,sessions,engaged_sessions,page_views,channel,"
        "is_first_visit,total_engagement_seconds,days_active_span,distinct_channels,is_won\n"
    )
    rows = [
        "a,,2026-07-01 10:00:00.123+00,1,1,1,Email,true,12.5,0.0,1,0\n",
        "b,,2026-07-01 10:00:00+00,1,1,1,Email,true,12.5,0.0,1,1\n",
        "c,,2026-06-01 10:02:00.5+00,1,1,1,Email,true,12.5,0.0,1,0\n",
    ]
    for order in (rows, rows[::-1]):
        path = tmp_path / "features.csv"
        path.write_text(header + "".join(order))
        frame = read_features_csv(path).set_index("contact_id")
        assert frame.loc["b", "lead_created_at"] == pd.Timestamp("2026-07-01 10:00:00", tz="UTC")
        assert frame.loc["a", "lead_created_at"] == pd.Timestamp(
            "2026-07-01 10:00:00.123", tz="UTC"
        )
