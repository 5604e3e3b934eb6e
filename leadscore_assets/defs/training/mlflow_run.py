"""What a training's MLflow run records: parameters, metrics and tags, the registered model
version (alias `challenger`), and the candidate's files as artifacts — among them the served file
byte for byte, from which the promotion gate later loads a champion."""

from __future__ import annotations

from typing import Any

import mlflow
import mlflow.xgboost as mlflow_xgboost
import pandas as pd
from mlflow.models import infer_signature

from leadscore_assets import tracking
from leadscore_assets.defs.training.assessment import Assessment
from leadscore_assets.defs.training.candidate import Candidate
from leadscore_assets.defs.training.training import (
    CALIBRATION_CV_FOLDS,
    TEST_SIZE,
    TrainedModel,
    input_columns,
)
from leadscore_assets.settings import CHALLENGER_ALIAS, REGISTERED_MODEL_NAME, PipelineSettings
from leadscore_core.features import feature_matrix

PUBLISHED_ARTIFACT_DIR = "published"
# The search's figures logged as metrics `tuning_<name>` (the rest of its record is an artifact).
TUNING_METRICS = (
    "trials",
    "seconds",
    "best_validation_log_loss",
    "seed_validation_log_loss",
    "best_validation_roc_auc",
    "seed_validation_roc_auc",
)
TRAINING_ARTIFACT_DIR = "training"


def log_training(
    trained: TrainedModel,
    assessment: Assessment,
    *,
    hyperparameters: dict[str, Any],
    calibration_requested: str,
    shuffled_labels: bool,
    tags: dict[str, str],
) -> None:
    metrics, baseline, search = assessment.metrics, assessment.seed_baseline, trained.tuning
    mlflow.log_params(
        {
            **hyperparameters,
            "feature_set": trained.feature_set,
            "features": ",".join(trained.feature_names),
            "split": trained.split,
            "test_size": TEST_SIZE,
            "calibration": trained.calibration["method"],
            "calibration_requested": calibration_requested,
            "calibration_cv_folds": CALIBRATION_CV_FOLDS if trained.rows["calibration"] else 0,
            "hyperparameters_chosen": "seed" if trained.uses_seed_settings else "tuned",
            "tuning_budget_trials": search["budget_trials"] if search else 0,
            "tuning_budget_seconds": search["budget_seconds"] if search else 0,
            "shuffled_labels": shuffled_labels,
        }
    )
    mlflow.log_metrics(
        {
            **metrics,
            "auc": metrics["roc_auc"],  # the seed's name for it, so old dashboards keep working
            "raw_brier": assessment.raw_metrics["brier"],
            "raw_log_loss": assessment.raw_metrics["log_loss"],
            "required_inputs_only_roc_auc": assessment.required_inputs_only["roc_auc"],
            "required_inputs_only_brier": assessment.required_inputs_only["brier"],
            "seed_baseline_roc_auc": baseline["roc_auc"],
            "seed_baseline_pr_auc": baseline["pr_auc"],
            **{
                f"seed_settings_{name}": assessment.seed_settings[name]
                for name in ("roc_auc", "pr_auc", "brier", "log_loss")
            },
            "training_rows": trained.rows["fit"],
            "validation_rows": trained.rows["validation"],
            "calibration_rows": trained.rows["calibration"],
            "training_seconds": trained.seconds,
            **{
                f"tuning_{name}": search[name]
                for name in TUNING_METRICS
                if search and name in search
            },
        }
    )
    mlflow.set_tags({"feature_set": trained.feature_set, "split": trained.split, **tags})
    if search:
        # Every trial's settings, tree count, validation scores and duration, and the summary.
        mlflow.log_table(pd.DataFrame(trained.tuning_trials), artifact_file="tuning/trials.json")
        mlflow.log_dict(search, "tuning/summary.json")


def register(trained: TrainedModel, settings: PipelineSettings) -> str:
    """Log the booster as an MLflow model (signature, input example), register it and point the
    `challenger` alias at it; returns the registered version."""
    example = pd.DataFrame(
        feature_matrix(
            input_columns(trained.test_rows.head(5)), trained.features, trained.categories
        ),
        columns=trained.feature_names,
    )
    logged = mlflow_xgboost.log_model(
        trained.booster,
        name="model",
        signature=infer_signature(example, trained.booster.inplace_predict(example.to_numpy())),
        input_example=example,
        registered_model_name=REGISTERED_MODEL_NAME,
    )
    version = str(logged.registered_model_version)
    tracking.client(settings).set_registered_model_alias(
        REGISTERED_MODEL_NAME, CHALLENGER_ALIAS, version
    )
    return version


def log_candidate(candidate: Candidate, assessment: Assessment) -> None:
    mlflow.log_artifacts(str(candidate.report_dir), artifact_path="report")
    mlflow.log_artifact(str(candidate.card_path))
    mlflow.log_dict(
        {
            "tiers": assessment.tiers,
            "metrics": assessment.metrics,
            "seed_baseline": assessment.seed_baseline,
            "seed_settings": assessment.seed_settings,
            "required_inputs_only": assessment.required_inputs_only,
        },
        "evaluation.json",
    )
    # The served file, byte for byte, so any registered version can be audited or re-published.
    mlflow.log_artifact(str(candidate.model_path), artifact_path=PUBLISHED_ARTIFACT_DIR)
    mlflow.log_artifact(str(candidate.seen_contacts_path), artifact_path=TRAINING_ARTIFACT_DIR)
    mlflow.log_artifact(str(candidate.training_data_path), artifact_path=TRAINING_ARTIFACT_DIR)
