"""How good a trained model is before anyone decides to serve it: holdout metrics (served and raw
scores), conversion by sales tier, the seed's four-feature baseline and the same features with the
seed's fixed settings on the same split, what callers sending only the required fields get, and
warnings when the data is too small to judge."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadscore_assets.defs.training.evaluation import (
    classification_metrics,
    conversion_by_tier,
    score_tiers,
)
from leadscore_assets.defs.training.training import TrainedModel, train
from leadscore_core.features import LABEL_COLUMN

# Tier boundaries below the routing threshold (which is the top tier's lower bound).
LOWER_TIER_BOUNDARIES = (0.2, 0.5)
# The comparison models' metrics carry this too, for the model card's table.
REQUIRED_INPUTS_ONLY_ROC_AUC = "required_inputs_only_roc_auc"


@dataclass(frozen=True)
class Assessment:
    metrics: dict[str, float | int]
    raw_metrics: dict[str, float | int]  # before calibration
    tiers: list[dict]
    # Comparisons on the same split, each with its REQUIRED_INPUTS_ONLY_ROC_AUC: the seed's four
    # features with its settings, and this feature set with the seed's settings (the model's own
    # metrics when it uses them).
    seed_baseline: dict[str, float | int]
    seed_settings: dict[str, float | int]
    required_inputs_only: dict[str, float | int]
    warnings: list[str] = field(default_factory=list)


def small_data_warnings(
    rows: int, positives: int, min_leads: int, min_conversions: int
) -> list[str]:
    """Why the data is too small to judge a model on (the promotion gate refuses such models)."""
    warnings = []
    if rows < min_leads:
        warnings.append(
            f"only {rows:,} leads (fewer than {min_leads:,}): metrics are "
            "unreliable and the model will not be promoted"
        )
    if positives < min_conversions:
        warnings.append(
            f"only {positives:,} conversions (fewer than {min_conversions:,}): "
            "metrics are unreliable and the model will not be promoted"
        )
    return warnings


def _holdout_metrics(
    trained: TrainedModel, threshold: float
) -> tuple[dict[str, float | int], dict[str, float | int]]:
    """Metrics of the served scores on the holdout, and of the scores callers sending only the
    required fields (the seed's /score body) get: the same when no feature uses an optional
    input."""
    holdout = trained.test_rows
    outcomes = holdout[LABEL_COLUMN]
    metrics = classification_metrics(outcomes, holdout["score"], threshold)
    if "score_required_inputs_only" not in holdout:
        return metrics, metrics
    return metrics, classification_metrics(
        outcomes, holdout["score_required_inputs_only"], threshold
    )


def _comparison_metrics(trained: TrainedModel, threshold: float) -> dict[str, float | int]:
    """A comparison model's metrics, with the ROC AUC its required-inputs-only requests get."""
    metrics, required_only = _holdout_metrics(trained, threshold)
    return {**metrics, REQUIRED_INPUTS_ONLY_ROC_AUC: required_only["roc_auc"]}


def assess(
    frame: pd.DataFrame,
    trained: TrainedModel,
    *,
    calibration: str,
    categories: Mapping[str, Sequence[str]],
    threshold: float,
    nthread: int,
    min_leads: int,
    min_conversions: int,
) -> Assessment:
    """`calibration` is the method requested for `trained` ("auto", ...) and `categories` the
    mapping it was trained with: the comparison with the seed's settings gets the same."""
    metrics, required_only = _holdout_metrics(trained, threshold)
    # The model's features with the seed's fixed settings: what the search gained.
    seed_settings = (
        {**metrics, REQUIRED_INPUTS_ONLY_ROC_AUC: required_only["roc_auc"]}
        if trained.uses_seed_settings
        else _comparison_metrics(
            train(
                frame,
                feature_set=trained.feature_set,
                split=trained.split,
                calibration=calibration,
                categories=categories,
                nthread=nthread,
            ),
            threshold,
        )
    )
    # The seed's four features with its settings, uncalibrated: the yardstick.
    seed_baseline = (
        seed_settings
        if trained.feature_set == "seed"
        else _comparison_metrics(
            train(
                frame,
                feature_set="seed",
                split=trained.split,
                calibration="none",
                categories={},
                nthread=nthread,
            ),
            threshold,
        )
    )
    holdout = trained.test_rows
    return Assessment(
        metrics=metrics,
        raw_metrics=classification_metrics(holdout[LABEL_COLUMN], holdout["raw_score"], threshold),
        tiers=conversion_by_tier(
            holdout[LABEL_COLUMN],
            holdout["score"],
            score_tiers((*LOWER_TIER_BOUNDARIES, threshold)),
        ),
        seed_baseline=seed_baseline,
        seed_settings=seed_settings,
        required_inputs_only=required_only,
        warnings=small_data_warnings(
            len(frame), int(np.sum(frame[LABEL_COLUMN])), min_leads, min_conversions
        ),
    )
