"""A full materialisation on a small generated dataset: every stage leaves what it promises."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from dagster import MarkdownMetadataValue
from mlflow import MlflowClient
from pipeline_runner import TEST_TUNING_TRIALS
from sklearn.metrics import roc_auc_score

from leadscore_assets.defs.training.assets import launched_by
from leadscore_assets.defs.training.candidate import HOLDOUT_FILE as CANDIDATE_HOLDOUT
from leadscore_assets.defs.training.training import input_columns
from leadscore_assets.defs.warehouse.assets import MART_TABLE
from leadscore_assets.settings import EXPERIMENT_NAME, REGISTERED_MODEL_NAME
from leadscore_core.artifact import METADATA_ATTRIBUTE, apply_calibration, load_model
from leadscore_core.features import CSV_COLUMNS

pytestmark = pytest.mark.slow


def test_every_asset_materialised_and_every_check_passed(trained_pipeline):
    result = trained_pipeline.result
    materialised = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {
        "landing_files",
        "raw/ga4_sessions",
        "raw/crm_contacts",
        "raw/crm_deals",
        "staging/stg_ga4_sessions",
        "marts/fct_lead_scoring_features",
        "lead_scoring_features_csv",
        "lead_scoring_model",
        "published_model",
        "lead_scores",
        "crm_sync",
    } <= materialised
    checks = trained_pipeline.check_results(result)
    assert len(checks) >= 20, "dbt tests should surface as asset checks"
    assert all(c.passed for c in checks.values()), [n for n, c in checks.items() if not c.passed]
    assert "promotion_gate" in checks


def test_mart_has_one_row_per_contact(trained_pipeline):
    settings = trained_pipeline.settings
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        contacts = conn.execute("SELECT count(*) FROM raw.crm_contacts").fetchone()[0]
        rows, distinct = conn.execute(
            f"SELECT count(*), count(DISTINCT contact_id) FROM {MART_TABLE}"
        ).fetchone()
        conversion = conn.execute(f"SELECT avg(is_won) FROM {MART_TABLE}").fetchone()[0]
    assert contacts == settings.synthetic_leads
    assert rows == distinct == contacts
    assert 0.05 <= conversion <= 0.15


def test_features_csv_has_the_specified_columns(trained_pipeline):
    path = trained_pipeline.settings.features_csv_path
    with path.open(newline="") as handle:
        header = next(csv.reader(handle))
    assert tuple(header) == CSV_COLUMNS
    frame = pd.read_csv(path)
    assert len(frame) == trained_pipeline.settings.synthetic_leads
    assert (frame["engaged_sessions"] <= frame["sessions"]).all()


def test_running_the_pipeline_leaves_the_mlflow_environment_as_it_was(trained_pipeline):
    """mlflow.set_tracking_uri exports the URI; a later run in this process (or a subprocess it
    starts) must not inherit the last data directory's store as if the user had chosen it."""
    assert os.environ.get("MLFLOW_TRACKING_URI") == trained_pipeline.environment_before.get(
        "MLFLOW_TRACKING_URI"
    )


def _mlflow_run(settings):
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    assert experiment is not None
    assert experiment.artifact_location.startswith(settings.artifact_location)
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    return client, runs[0]


def test_mlflow_run_has_params_metrics_tags_and_model(trained_pipeline, tmp_path):
    settings = trained_pipeline.settings
    client, run = _mlflow_run(settings)
    assert run.info.status == "FINISHED"
    for param in ("max_depth", "learning_rate", "n_estimators", "objective", "random_state"):
        assert param in run.data.params
    for metric in ("accuracy", "precision", "recall", "f1", "auc", "roc_auc", "pr_auc", "brier"):
        assert metric in run.data.metrics
    # The settings the search chose are the params, the model's metadata and the booster's.
    metadata = load_model(settings.published_model_path).metadata
    for name, value in metadata.hyperparameters.items():
        assert run.data.params[name] == str(value), name
    assert run.data.params["hyperparameters_chosen"] == metadata.tuning["chosen"]
    assert run.data.metrics["tuning_trials"] == metadata.tuning["trials"] == TEST_TUNING_TRIALS
    assert run.data.metrics["seed_settings_roc_auc"] == pytest.approx(
        metadata.seed_settings_metrics["roc_auc"]
    )
    trials = json.loads(
        Path(
            client.download_artifacts(run.info.run_id, "tuning/trials.json", str(tmp_path))
        ).read_text()
    )
    assert len(trials["data"]) == TEST_TUNING_TRIALS
    assert run.data.tags["dagster_run_id"] == trained_pipeline.result.run_id
    assert len(run.data.tags["training_data_sha256"]) == 64
    version = client.get_model_version_by_alias(REGISTERED_MODEL_NAME, "champion")
    assert version.run_id == run.info.run_id
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report", "published", "model_card.md"} <= artifacts


def test_published_model_loads_in_plain_xgboost_and_reproduces_logged_auc(trained_pipeline):
    settings = trained_pipeline.settings
    published = settings.published_model_path
    booster = xgb.Booster(model_file=str(published))
    metadata = json.loads(booster.attr(METADATA_ATTRIBUTE))
    _, run = _mlflow_run(settings)
    assert metadata["mlflow_run_id"] == run.info.run_id
    assert metadata["dagster_run_id"] == trained_pipeline.result.run_id

    version = metadata["registered_model"]["version"]
    holdout = pd.read_parquet(settings.candidates_dir / f"v{version}" / CANDIDATE_HOLDOUT)
    model = load_model(published)
    matrix = model.matrix(input_columns(holdout))
    raw = booster.inplace_predict(matrix)
    served = apply_calibration(np.asarray(raw, dtype=np.float64), metadata["calibration"])
    auc = roc_auc_score(holdout["is_won"], served)
    assert auc == pytest.approx(run.data.metrics["roc_auc"], abs=1e-9)
    assert auc >= 0.75, "the synthetic data carries signal a model must find"


def test_the_compiled_predictor_is_published_beside_the_model(trained_pipeline):
    published = trained_pipeline.settings.published_model_path
    model = load_model(published, compiled_dir=published.parent)
    assert model.predictor.kind == "compiled"
    assert [p.name for p in published.parent.glob("predictor-*.so")] == [
        f"predictor-{model.file_sha256}.so"
    ]


def test_published_model_records_its_provenance(trained_pipeline):
    model = load_model(trained_pipeline.settings.published_model_path)
    metadata = model.metadata
    assert (
        metadata["model_version"]
        == f"{REGISTERED_MODEL_NAME}/{metadata['registered_model']['version']}"
    )
    assert metadata["training_data"]["rows"] == trained_pipeline.settings.synthetic_leads
    assert metadata["training_data"]["sha256"] == _sha256(
        trained_pipeline.settings.features_csv_path
    )
    assert "fct_lead_scoring_features" in metadata["code_version"]["dbt_models"]
    assert metadata["threshold"] == 0.8
    assert [f["name"] for f in metadata["features"]] == list(model.feature_names)


def test_the_exact_training_file_and_report_are_kept(trained_pipeline):
    settings = trained_pipeline.settings
    model = load_model(settings.published_model_path)
    candidate = settings.candidates_dir / f"v{model.metadata['registered_model']['version']}"
    with gzip.open(candidate / "lead_scoring_features.csv.gz", "rb") as kept:
        assert hashlib.sha256(kept.read()).hexdigest() == model.metadata["training_data"]["sha256"]
    for name in ("roc", "precision_recall", "calibration", "gains", "feature_importance"):
        png = (candidate / "report" / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000, name
    assert (settings.models_dir / "model_card.md").read_text().startswith("# Model card")
    client, run = _mlflow_run(settings)
    training = {a.path for a in client.list_artifacts(run.info.run_id, "training")}
    assert "training/lead_scoring_features.csv.gz" in training


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_source_tests_ran_as_checks_on_the_raw_assets(trained_pipeline):
    checks = trained_pipeline.check_results(trained_pipeline.result)
    on_raw = {name: check for name, check in checks.items() if check.asset_key.path[0] == "raw"}
    assert "source_unique_raw_crm_contacts_contact_id" in on_raw
    assert len(on_raw) == 12, sorted(on_raw)
    assert all(check.passed for check in on_raw.values())
    observations = [e for e in trained_pipeline.result.all_events if e.is_asset_observation]
    assert not observations, "every dbt test result is an asset check"


def test_a_run_writes_nothing_into_the_checkout(trained_pipeline):
    """dbt's artifacts and logs, MLflow's store and the models all go to the data directory."""
    assert trained_pipeline.checkout_after == trained_pipeline.checkout_before


def test_running_the_pipeline_leaves_the_data_dir_environment_as_it_was(trained_pipeline):
    """The dbt subprocess gets the warehouse path in its vars; nothing is exported for it."""
    for name in ("LEADSCORE_DATA_DIR", "PATH"):
        assert os.environ.get(name) == trained_pipeline.environment_before.get(name)


def test_the_mlflow_run_is_named_after_what_started_it(trained_pipeline):
    _, run = _mlflow_run(trained_pipeline.settings)
    assert run.info.run_name == "train full/random (retrain_job)"
    assert launched_by("__ASSET_JOB", {}) == "materialize"
    assert launched_by("retrain_job", {"dagster/sensor_name": "new_landing_files"}) == (
        "new_landing_files"
    )
    assert launched_by("retrain_job", {"dagster/schedule_name": "daily_retrain"}) == (
        "daily_retrain"
    )


def test_the_model_card_and_the_report_are_markdown_in_the_asset_metadata(trained_pipeline):
    metadata = trained_pipeline.materialization(
        trained_pipeline.result, "lead_scoring_model"
    ).metadata
    assert isinstance(metadata["model_card"], MarkdownMetadataValue)
    assert metadata["model_card"].value.startswith("# Model card: lead scoring model")
    assert metadata["report"].value.count("data:image/png;base64,") == 5
