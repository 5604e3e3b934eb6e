"""How good a lead score is, in the numbers data scientists and sales teams each read.

Everything here is a pure function of outcomes (1 = closed-won) and scores (probabilities), so the
training asset, the docs and the tests compute metrics the same way. Standard metrics come from
scikit-learn; only the sales views it lacks (lift, cumulative gains, score tiers) are written here.

Conventions shared with the scoring API and the routing workflow: a lead counts as "above" a
cut-off when its score is strictly greater than it (the API labels a lead "high" when
score > threshold; XGBoost predicts the positive class when probability > 0.5).

Ranking views (top fraction, deciles, gains) order leads by descending score. Leads that tie on
score have no order among themselves, so where a cut falls inside a group of tied leads, the group
counts pro rata: the cut receives the group's conversions in proportion to the leads it takes.
That is the average over every order of the tied leads, so results never depend on row order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from leadscore_core.settings import DEFAULT_HIGH_THRESHOLD

# Tiers are defined with the label in leadscore_core; re-exported for the training asset.
from leadscore_core.tiers import SALES_TIERS, ScoreTier
from leadscore_core.tiers import score_tiers as score_tiers

# Where the seed's accuracy, precision, recall and F1 cut: XGBoost's own class prediction.
CLASSIFICATION_CUTOFF = 0.5
DEFAULT_ROUTING_THRESHOLD = DEFAULT_HIGH_THRESHOLD
DEFAULT_TOP_FRACTION = 0.10
DECILES = 10


def outcomes_and_scores(y_true: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validated 0/1 outcomes (int) and probability scores (float64), as flat arrays.

    Raises ValueError naming the problem: every metric here is meaningless without both
    converted and unconverted leads, and log loss and Brier need probabilities in [0, 1].
    """
    outcomes = np.asarray(y_true).ravel()
    probabilities = np.asarray(scores, dtype=np.float64).ravel()
    if outcomes.size != probabilities.size:
        raise ValueError(f"y_true has {outcomes.size} values but scores has {probabilities.size}")
    if outcomes.size == 0:
        raise ValueError("no leads to evaluate")
    if not np.all(np.isin(outcomes, (0, 1))):
        raise ValueError("y_true must contain only 0 (not won) and 1 (won)")
    if not np.all(np.isfinite(probabilities)):
        raise ValueError("scores contain NaN or infinite values")
    if probabilities.min() < 0 or probabilities.max() > 1:
        raise ValueError("scores must be probabilities in [0, 1]")
    outcomes = outcomes.astype(np.int64)
    positives = int(outcomes.sum())
    if positives in (0, outcomes.size):
        only = "converted" if positives else "unconverted"
        raise ValueError(
            f"all {outcomes.size} leads are {only}: evaluation needs both converted and "
            "unconverted leads"
        )
    return outcomes, probabilities


def _check_open_unit_interval(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value}")


def _gain_counts(outcomes: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leads and conversions taken, cumulatively, at each end of a group of tied scores.

    Descending by score, starting at (0, 0). Between these points the pro-rata rule makes the
    curve linear, so `np.interp` over them gives the conversions within any number of top leads.
    """
    order = np.argsort(-scores, kind="stable")
    ranked_scores = scores[order]
    group_ends = np.append(np.flatnonzero(np.diff(ranked_scores) != 0) + 1, scores.size)
    conversions = np.cumsum(outcomes[order])[group_ends - 1]
    return np.append(0, group_ends), np.append(0, conversions)


def _top_lead_count(n_leads: int, fraction: float) -> int:
    """Leads in the top `fraction`: n x fraction rounded half up, the same rule for every cut."""
    return int(np.floor(n_leads * fraction + 0.5))


def cumulative_gains(y_true: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The cumulative gains curve: share of all conversions captured by the top share of leads.

    Returns (share_of_leads, share_of_conversions), both from 0 to 1, at the ends of tied-score
    groups; the curve is linear in between (module docstring).
    """
    outcomes, probabilities = outcomes_and_scores(y_true, scores)
    leads, conversions = _gain_counts(outcomes, probabilities)
    return leads / outcomes.size, conversions / conversions[-1]


def _percent_label(fraction: float) -> str:
    return f"{fraction * 100:g}"


def classification_metrics(
    y_true: ArrayLike,
    scores: ArrayLike,
    threshold: float = DEFAULT_ROUTING_THRESHOLD,
    top_fraction: float = DEFAULT_TOP_FRACTION,
) -> dict[str, float | int]:
    """A flat dict of metrics, ready for `mlflow.log_metrics` and JSON.

    Ranking: roc_auc, pr_auc (average precision). Probability quality: brier, log_loss.
    The seed's metrics at a 0.5 cut-off: accuracy, precision, recall, f1. Routing (score >
    threshold): precision_at_threshold, recall_at_threshold, share_above_threshold. Sales ranking:
    lift_top_<p>pct (conversion rate among the top `top_fraction` of leads by score over the base
    rate) and recall_top_<p>pct (share of all conversions in that top), where <p> is the percentage
    (10 by default) and the top holds round-half-up(rows x top_fraction) leads, at least one, ties
    pro rata. Precision is 0 when no lead is above its cut-off (scikit-learn's zero_division=0).
    """
    outcomes, probabilities = outcomes_and_scores(y_true, scores)
    _check_open_unit_interval("threshold", threshold)
    if not 0 < top_fraction <= 1:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
    classified = probabilities > CLASSIFICATION_CUTOFF
    routed = probabilities > threshold
    n_leads = outcomes.size
    positives = int(outcomes.sum())
    base_rate = positives / n_leads
    leads, conversions = _gain_counts(outcomes, probabilities)
    top_leads = max(1, _top_lead_count(n_leads, top_fraction))
    top_conversions = float(np.interp(top_leads, leads, conversions))
    percent = _percent_label(top_fraction)
    return {
        "roc_auc": float(roc_auc_score(outcomes, probabilities)),
        "pr_auc": float(average_precision_score(outcomes, probabilities)),
        "brier": float(brier_score_loss(outcomes, probabilities)),
        "log_loss": float(log_loss(outcomes, probabilities, labels=[0, 1])),
        "accuracy": float(accuracy_score(outcomes, classified)),
        "precision": float(precision_score(outcomes, classified, zero_division=0.0)),
        "recall": float(recall_score(outcomes, classified)),
        "f1": float(f1_score(outcomes, classified, zero_division=0.0)),
        "precision_at_threshold": float(precision_score(outcomes, routed, zero_division=0.0)),
        "recall_at_threshold": float(recall_score(outcomes, routed)),
        "share_above_threshold": float(routed.mean()),
        f"lift_top_{percent}pct": top_conversions / top_leads / base_rate,
        f"recall_top_{percent}pct": top_conversions / positives,
        "base_rate": base_rate,
        "rows": n_leads,
        "positives": positives,
    }


def _check_tiers_cover_unit_interval(tiers: Sequence[ScoreTier]) -> None:
    """Tiers must run from score 1 down to 0 without gaps or overlaps, so every lead is counted
    exactly once."""
    if not tiers or tiers[0].upper != 1.0 or tiers[-1].lower != 0.0:
        raise ValueError("tiers must run from the highest (upper 1.0) to the lowest (lower 0.0)")
    for higher, lower in zip(tiers, tiers[1:], strict=False):
        if higher.lower != lower.upper or higher.lower >= higher.upper:
            raise ValueError(f"tiers {higher.name!r} and {lower.name!r} are not contiguous")


def conversion_by_tier(
    y_true: ArrayLike, scores: ArrayLike, tiers: Sequence[ScoreTier] = SALES_TIERS
) -> list[dict]:
    """Conversion rate per score tier, highest tier first.

    Each row: tier, lower, upper, leads, conversions, conversion_rate, mean_score; the last two
    are None for a tier without leads (so the rows stay valid JSON).
    """
    outcomes, probabilities = outcomes_and_scores(y_true, scores)
    _check_tiers_cover_unit_interval(tiers)
    rows = []
    for tier in tiers:
        in_tier = probabilities <= tier.upper
        if tier is not tiers[-1]:
            in_tier &= probabilities > tier.lower
        leads = int(in_tier.sum())
        conversions = int(outcomes[in_tier].sum())
        rows.append(
            {
                "tier": tier.name,
                "lower": tier.lower,
                "upper": tier.upper,
                "leads": leads,
                "conversions": conversions,
                "conversion_rate": conversions / leads if leads else None,
                "mean_score": float(probabilities[in_tier].mean()) if leads else None,
            }
        )
    return rows


def score_deciles(y_true: ArrayLike, scores: ArrayLike) -> list[dict]:
    """The lift table: leads ranked by score and cut into ten equal parts, best decile first.

    Decile d holds the leads ranked between round-half-up(n x (d-1)/10) and round-half-up(n x d/10),
    so decile 1 is exactly the "top 10%" of `classification_metrics`. Each row: decile, leads,
    conversions (fractional only where tied scores straddle a decile edge), conversion_rate, lift
    (conversion rate over the base rate), cumulative_recall (share of all conversions in deciles
    1..d: the cumulative gains curve at d/10), min_score, max_score. Rates and scores are None for
    a decile without leads (fewer than ten leads in all).
    """
    outcomes, probabilities = outcomes_and_scores(y_true, scores)
    n_leads = outcomes.size
    positives = int(outcomes.sum())
    base_rate = positives / n_leads
    leads, conversions = _gain_counts(outcomes, probabilities)
    ranked_scores = np.sort(probabilities)[::-1]
    edges = [_top_lead_count(n_leads, d / DECILES) for d in range(DECILES + 1)]
    cumulative = np.interp(edges, leads, conversions)
    rows = []
    for decile in range(1, DECILES + 1):
        start, stop = edges[decile - 1], edges[decile]
        decile_leads = stop - start
        decile_conversions = float(cumulative[decile] - cumulative[decile - 1])
        rate = decile_conversions / decile_leads if decile_leads else None
        rows.append(
            {
                "decile": decile,
                "leads": decile_leads,
                "conversions": decile_conversions,
                "conversion_rate": rate,
                "lift": rate / base_rate if decile_leads else None,
                "cumulative_recall": float(cumulative[decile] / positives),
                "min_score": float(ranked_scores[stop - 1]) if decile_leads else None,
                "max_score": float(ranked_scores[start]) if decile_leads else None,
            }
        )
    return rows
