"""How good a trained model is before anyone decides to serve it: holdout metrics (served and raw
scores), conversion by sales tier, the seed's four-feature baseline on the same split, what
callers sending only the required fields get, and warnings when the data is too small to judge."""

from __future__ import annotations

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


@dataclass(frozen=True)
class Assessment:
    metrics: dict[str, float | int]
    raw_metrics: dict[str, float | int]  # before calibration
    tiers: list[dict]
    seed_baseline: dict[str, float | int]
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


def _seed_baseline(
    frame: pd.DataFrame, trained: TrainedModel, threshold: float, nthread: int
) -> dict[str, float | int]:
    """The seed's four-feature model on the same split, uncalibrated: the yardstick."""
    baseline = train(
        frame,
        feature_set="seed",
        split=trained.split,
        calibration="none",
        categories={},
        nthread=nthread,
    )
    return classification_metrics(
        baseline.test_rows[LABEL_COLUMN], baseline.test_rows["score"], threshold
    )


def assess(
    frame: pd.DataFrame,
    trained: TrainedModel,
    *,
    threshold: float,
    nthread: int,
    min_leads: int,
    min_conversions: int,
) -> Assessment:
    holdout = trained.test_rows
    outcomes = holdout[LABEL_COLUMN]
    metrics = classification_metrics(outcomes, holdout["score"], threshold)
    # What callers sending only the required fields (the seed's /score body) get.
    required_only = (
        classification_metrics(outcomes, holdout["score_required_inputs_only"], threshold)
        if "score_required_inputs_only" in holdout
        else metrics
    )
    return Assessment(
        metrics=metrics,
        raw_metrics=classification_metrics(outcomes, holdout["raw_score"], threshold),
        tiers=conversion_by_tier(
            outcomes, holdout["score"], score_tiers((*LOWER_TIER_BOUNDARIES, threshold))
        ),
        seed_baseline=(
            _seed_baseline(frame, trained, threshold, nthread)
            if trained.feature_set != "seed"
            else metrics
        ),
        required_inputs_only=required_only,
        warnings=small_data_warnings(
            len(frame), int(np.sum(frame[LABEL_COLUMN])), min_leads, min_conversions
        ),
    )
