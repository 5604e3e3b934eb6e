"""The promotion gate: a blocking check on exactly the candidate `lead_scoring_model` produced.

It compares the candidate with the current champion (the registry's `champion` alias, loaded from
the served file logged in its MLflow run) on holdout rows neither model trained on, and records
its verdict on the candidate's MLflow run (tags `promotion_gate*`), where the publish step reads
it. A refusal fails the run before anything is published, with one line saying why.
"""

from dataclasses import dataclass
from typing import Any

import mlflow.artifacts
import numpy as np
import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
    ResourceParam,
    asset_check,
)
from mlflow.exceptions import MlflowException
from sklearn.metrics import roc_auc_score

from leadscore_assets import tracking
from leadscore_assets.defs.promotion.gate import GateDecision, HeadToHead, decide_promotion
from leadscore_assets.defs.training.candidate import MODEL_FILE, SEEN_CONTACTS_FILE, Candidate
from leadscore_assets.defs.training.mlflow_run import (
    PUBLISHED_ARTIFACT_DIR,
    TRAINING_ARTIFACT_DIR,
)
from leadscore_assets.defs.training.training import input_columns
from leadscore_assets.settings import (
    CHAMPION_ALIAS,
    PIPELINE_POOL,
    REGISTERED_MODEL_NAME,
    PipelineSettings,
)
from leadscore_core.artifact import LoadedModel, load_model
from leadscore_core.features import LABEL_COLUMN

# A fair head-to-head needs holdout rows neither model trained on; below this many (or with one
# class only) the whole holdout is used, which can only favour the champion.
MIN_HEAD_TO_HEAD_ROWS = 200
# The verdict on the candidate's MLflow run: "passed" or "failed", why, and against which
# champion version ("none" when there was none), so publishing can check nothing changed since.
GATE_TAG = "promotion_gate"
GATE_REASON_TAG = "promotion_gate.reason"
GATE_CHAMPION_TAG = "promotion_gate.champion_version"
NO_CHAMPION = "none"


@dataclass(frozen=True)
class Champion:
    version: str
    model: LoadedModel
    seen_contact_ids: np.ndarray


def current_champion_version(settings: PipelineSettings) -> str:
    """The registry's champion version, or NO_CHAMPION."""
    try:
        version = tracking.client(settings).get_model_version_by_alias(
            REGISTERED_MODEL_NAME, CHAMPION_ALIAS
        )
    except MlflowException:
        return NO_CHAMPION
    return str(version.version)


def _champion(settings: PipelineSettings) -> Champion | None:
    """The current champion's served file and training leads, from its MLflow run."""
    version = current_champion_version(settings)
    if version == NO_CHAMPION:
        return None
    run_id = tracking.client(settings).get_model_version(REGISTERED_MODEL_NAME, version).run_id

    def artifact(path: str) -> str:
        return mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=path, tracking_uri=settings.tracking_uri
        )

    seen = pd.read_parquet(artifact(f"{TRAINING_ARTIFACT_DIR}/{SEEN_CONTACTS_FILE}"))
    model = load_model(artifact(f"{PUBLISHED_ARTIFACT_DIR}/{MODEL_FILE}"))
    # Contact ids are text; a champion trained before they were stored its ids as integers.
    return Champion(version, model, seen["contact_id"].astype(str).to_numpy())


def _auc_on(model: LoadedModel, holdout: pd.DataFrame) -> float:
    return float(roc_auc_score(holdout[LABEL_COLUMN], model.predict_proba(input_columns(holdout))))


def _head_to_head(challenger: LoadedModel, champion: Champion, holdout: pd.DataFrame) -> HeadToHead:
    """Both models on the holdout rows the champion never saw (the challenger never saw any)."""
    unseen = holdout[~holdout["contact_id"].astype(str).isin(champion.seen_contact_ids)]
    fair = len(unseen) >= MIN_HEAD_TO_HEAD_ROWS and unseen[LABEL_COLUMN].nunique() == 2
    rows = unseen if fair else holdout
    return HeadToHead(
        _auc_on(challenger, rows),
        _auc_on(champion.model, rows),
        len(rows),
        champion=f"the champion {REGISTERED_MODEL_NAME}/{champion.version}",
    )


def _record(
    settings: PipelineSettings, candidate: Candidate, decision: GateDecision, champion: str
):
    registry = tracking.client(settings)
    registry.set_tag(candidate.mlflow_run_id, GATE_TAG, "passed" if decision.passed else "failed")
    registry.set_tag(candidate.mlflow_run_id, GATE_REASON_TAG, decision.reason)
    registry.set_tag(candidate.mlflow_run_id, GATE_CHAMPION_TAG, champion)


@asset_check(
    asset=AssetKey("lead_scoring_model"),
    blocking=True,
    pool=PIPELINE_POOL,
    description="Promote only a model with ROC AUC >= the floor that is not worse than the "
    "current champion by more than the allowed drop, on the same holdout rows.",
)
def promotion_gate(
    context: AssetCheckExecutionContext,
    lead_scoring_model: Candidate,
    settings: ResourceParam[PipelineSettings],
) -> AssetCheckResult:
    candidate = lead_scoring_model
    challenger = candidate.load_model()
    holdout = candidate.holdout()
    challenger_auc = _auc_on(challenger, holdout)
    champion = _champion(settings)
    head_to_head = None if champion is None else _head_to_head(challenger, champion, holdout)
    decision = decide_promotion(
        challenger_auc=challenger_auc,
        head_to_head=head_to_head,
        min_auc=settings.gate_min_auc,
        max_auc_drop=settings.gate_max_auc_drop,
        warnings=challenger.metadata.warnings,
        demo_data=challenger.metadata.demo,
        demo_mode=settings.demo_mode,
        candidate=candidate.model_version,
    )
    _record(settings, candidate, decision, champion.version if champion else NO_CHAMPION)
    (context.log.info if decision.passed else context.log.error)(decision.reason)
    compared: dict[str, Any] = (
        {
            "champion_auc": MetadataValue.null(),
            "challenger_auc_vs_champion": MetadataValue.null(),
            "head_to_head_rows": 0,
        }
        if head_to_head is None
        else {
            "champion_auc": head_to_head.champion_auc,
            "challenger_auc_vs_champion": head_to_head.challenger_auc,
            "head_to_head_rows": head_to_head.rows,
        }
    )
    return AssetCheckResult(
        passed=decision.passed,
        severity=AssetCheckSeverity.ERROR,
        description=decision.reason,
        metadata={
            "challenger_version": candidate.registered_version,
            "challenger_auc": challenger_auc,
            "champion_version": champion.version if champion else NO_CHAMPION,
            **compared,
            "min_auc": settings.gate_min_auc,
            "max_auc_drop": settings.gate_max_auc_drop,
            "holdout_rows": len(holdout),
            "demo_model": challenger.metadata.demo,
            "demo_mode": settings.demo_mode,
        },
    )
