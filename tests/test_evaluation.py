"""Evaluation metrics: scikit-learn's where it has them, hand-derived examples where it does not."""

from __future__ import annotations

import numpy as np
import pytest
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

from leadscore_assets.defs.training.evaluation import (
    SALES_TIERS,
    ScoreTier,
    classification_metrics,
    conversion_by_tier,
    cumulative_gains,
    score_deciles,
    score_tiers,
)


@pytest.fixture
def fixed_leads() -> tuple[np.ndarray, np.ndarray]:
    """1,000 leads whose scores are rounded to two decimals, so ties are common, with exact 0.5
    and 0.8 scores present to pin down the strict cut-off rule."""
    rng = np.random.default_rng(7)
    scores = np.round(rng.beta(1.2, 4.0, 1000), 2)
    scores[:5] = 0.5
    scores[5:10] = 0.8
    outcomes = (rng.random(1000) < scores).astype(int)
    return outcomes, scores


def test_metrics_match_scikit_learn(fixed_leads):
    outcomes, scores = fixed_leads
    metrics = classification_metrics(outcomes, scores, threshold=0.8)
    classified, routed = scores > 0.5, scores > 0.8
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(outcomes, scores), abs=1e-15)
    assert metrics["pr_auc"] == pytest.approx(average_precision_score(outcomes, scores), abs=1e-15)
    assert metrics["brier"] == pytest.approx(brier_score_loss(outcomes, scores), abs=1e-15)
    assert metrics["log_loss"] == pytest.approx(log_loss(outcomes, scores), abs=1e-15)
    assert metrics["accuracy"] == accuracy_score(outcomes, classified)
    assert metrics["precision"] == precision_score(outcomes, classified)
    assert metrics["recall"] == recall_score(outcomes, classified)
    assert metrics["f1"] == f1_score(outcomes, classified)
    assert metrics["precision_at_threshold"] == precision_score(outcomes, routed)
    assert metrics["recall_at_threshold"] == recall_score(outcomes, routed)
    assert metrics["share_above_threshold"] == routed.mean()
    assert metrics["base_rate"] == outcomes.mean()
    assert metrics["rows"] == 1000
    assert metrics["positives"] == outcomes.sum()


def test_metrics_are_plain_numbers_for_mlflow(fixed_leads):
    metrics = classification_metrics(*fixed_leads)
    assert all(type(value) in (int, float) for value in metrics.values())


def test_cut_offs_are_strict_like_the_api():
    """A score of exactly 0.8 is not "high" in the API, and exactly 0.5 is not a predicted win."""
    outcomes = np.array([1, 1, 0, 0])
    scores = np.array([0.8, 0.5, 0.3, 0.1])
    metrics = classification_metrics(outcomes, scores, threshold=0.8)
    assert metrics["share_above_threshold"] == 0.0
    assert metrics["recall_at_threshold"] == 0.0
    assert metrics["precision_at_threshold"] == 0.0  # nothing routed: zero_division=0
    assert metrics["recall"] == 0.5  # only the 0.8 lead is above 0.5
    assert metrics["accuracy"] == 0.75


def test_lift_and_recall_in_the_top_ten_percent_by_hand():
    """20 leads with distinct scores, 4 conversions, so the base rate is 4/20 = 0.2.

    The top 10% is 2 leads: scores 0.95 (won) and 0.90 (lost), so their conversion rate is 1/2.
    Lift = 0.5 / 0.2 = 2.5; recall = 1 of the 4 conversions = 0.25.
    """
    scores = np.linspace(0.95, 0.0, 20)
    outcomes = np.zeros(20, dtype=int)
    outcomes[[0, 5, 10, 15]] = 1
    metrics = classification_metrics(outcomes, scores)
    assert metrics["lift_top_10pct"] == pytest.approx(2.5)
    assert metrics["recall_top_10pct"] == pytest.approx(0.25)


def test_ties_at_the_top_cut_count_pro_rata_and_ignore_row_order():
    """20 leads, base rate 4/20 = 0.2. The top 10% is 2 leads: the single 0.9 lead (won) and one
    of the three leads tied at 0.7, of which one won. Over the tied leads' possible orders the
    second place converts 1/3 of the time, so the top holds 1 + 1/3 conversions:
    conversion rate (4/3) / 2 = 2/3, lift (2/3) / 0.2 = 10/3, recall (4/3) / 4 = 1/3.
    """
    scores = np.array([0.9, 0.7, 0.7, 0.7] + [0.1] * 16)
    outcomes = np.array([1, 0, 1, 0] + [1, 1] + [0] * 14)
    metrics = classification_metrics(outcomes, scores)
    assert metrics["lift_top_10pct"] == pytest.approx(10 / 3)
    assert metrics["recall_top_10pct"] == pytest.approx(1 / 3)
    order = np.random.default_rng(0).permutation(20)
    # Equal up to floating-point summation order (log loss, Brier).
    assert classification_metrics(outcomes[order], scores[order]) == pytest.approx(
        metrics, rel=1e-12
    )


def test_other_top_fractions_are_named_by_percentage():
    """Top 25% of 20 leads = 5 leads: scores 0.95..0.75, of which the first converts."""
    scores = np.linspace(0.95, 0.0, 20)
    outcomes = np.zeros(20, dtype=int)
    outcomes[[0, 5, 10, 15]] = 1
    metrics = classification_metrics(outcomes, scores, top_fraction=0.25)
    assert metrics["recall_top_25pct"] == pytest.approx(0.25)
    assert metrics["lift_top_25pct"] == pytest.approx((1 / 5) / 0.2)
    assert "lift_top_10pct" not in metrics


@pytest.mark.parametrize(
    ("outcomes", "scores", "message"),
    [
        ([1, 1, 1], [0.2, 0.5, 0.9], "all 3 leads are converted"),
        ([0, 0], [0.2, 0.5], "all 2 leads are unconverted"),
        ([0, 1], [0.2], "y_true has 2 values but scores has 1"),
        ([], [], "no leads"),
        ([0, 2], [0.2, 0.5], "only 0"),
        ([0, 1], [0.2, np.nan], "NaN"),
        ([0, 1], [0.2, 1.5], r"\[0, 1\]"),
    ],
)
def test_degenerate_inputs_raise_a_clear_error(outcomes, scores, message):
    with pytest.raises(ValueError, match=message):
        classification_metrics(outcomes, scores)


def test_threshold_and_top_fraction_are_checked(fixed_leads):
    with pytest.raises(ValueError, match="threshold"):
        classification_metrics(*fixed_leads, threshold=1.0)
    with pytest.raises(ValueError, match="top_fraction"):
        classification_metrics(*fixed_leads, top_fraction=0.0)


def test_tiers_sum_to_the_totals(fixed_leads):
    outcomes, scores = fixed_leads
    rows = conversion_by_tier(outcomes, scores)
    assert [row["tier"] for row in rows] == ["A (> 0.8)", "B (0.5–0.8)", "C (0.2–0.5)", "D (≤ 0.2)"]
    assert sum(row["leads"] for row in rows) == outcomes.size
    assert sum(row["conversions"] for row in rows) == outcomes.sum()
    top = rows[0]
    assert top["leads"] == (scores > 0.8).sum()
    assert top["conversion_rate"] == pytest.approx(outcomes[scores > 0.8].mean())
    assert top["mean_score"] == pytest.approx(scores[scores > 0.8].mean())


def test_tier_edges_follow_the_strict_routing_rule():
    scores = np.array([1.0, 0.8, 0.5, 0.2, 0.0, 0.81])
    outcomes = np.array([1, 1, 0, 0, 0, 1])
    rows = {row["tier"][0]: row for row in conversion_by_tier(outcomes, scores)}
    assert rows["A"]["leads"] == 2  # 1.0 and 0.81; 0.8 is not above the threshold
    assert rows["B"]["leads"] == 1  # 0.8
    assert rows["C"]["leads"] == 1  # 0.5
    assert rows["D"]["leads"] == 2  # 0.2 and 0.0


def test_an_empty_tier_has_no_rate():
    rows = conversion_by_tier([1, 0, 0], [0.9, 0.1, 0.05])
    assert [row["leads"] for row in rows] == [1, 0, 0, 2]
    assert rows[1]["conversion_rate"] is None and rows[1]["mean_score"] is None


def test_score_tiers_from_a_routing_threshold():
    tiers = score_tiers((0.3, 0.6))
    assert tiers == (
        ScoreTier("A (> 0.6)", 0.6, 1.0),
        ScoreTier("B (0.3–0.6)", 0.3, 0.6),
        ScoreTier("C (≤ 0.3)", 0.0, 0.3),
    )
    assert [t.name for t in SALES_TIERS] == [t.name for t in score_tiers()]


@pytest.mark.parametrize("boundaries", [(), (0.5, 0.2), (0.2, 0.2), (0.0, 0.5), (0.5, 1.0)])
def test_score_tiers_reject_bad_boundaries(boundaries):
    with pytest.raises(ValueError):
        score_tiers(boundaries)


def test_tiers_with_a_gap_are_rejected():
    gap = (ScoreTier("A", 0.8, 1.0), ScoreTier("B", 0.0, 0.5))
    with pytest.raises(ValueError, match="not contiguous"):
        conversion_by_tier([0, 1], [0.1, 0.9], tiers=gap)


def test_deciles_by_hand():
    """20 leads with distinct scores: each decile is 2 leads. Conversions at ranks 1, 2, 3 and 20,
    base rate 4/20 = 0.2. Decile 1 converts 2/2 (lift 5, cumulative recall 2/4), decile 2 converts
    1/2 (lift 2.5, cumulative 3/4), deciles 3-9 convert nothing, decile 10 converts 1/2."""
    scores = np.linspace(0.95, 0.0, 20)
    outcomes = np.zeros(20, dtype=int)
    outcomes[[0, 1, 2, 19]] = 1
    rows = score_deciles(outcomes, scores)
    assert [row["leads"] for row in rows] == [2] * 10
    assert [row["lift"] for row in rows] == pytest.approx([5, 2.5, 0, 0, 0, 0, 0, 0, 0, 2.5])
    assert [row["cumulative_recall"] for row in rows] == pytest.approx(
        [0.5, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 1.0]
    )
    assert rows[0]["max_score"] == 0.95 and rows[0]["min_score"] == pytest.approx(0.9)


def test_decile_sizes_round_half_up_and_cover_every_lead():
    """25 leads: decile edges at round-half-up(2.5 d) = 0, 3, 5, 8, 10, 13, 15, 18, 20, 23, 25."""
    scores = np.linspace(0.99, 0.01, 25)
    outcomes = np.arange(25) % 3 == 0
    rows = score_deciles(outcomes.astype(int), scores)
    assert [row["leads"] for row in rows] == [3, 2, 3, 2, 3, 2, 3, 2, 3, 2]


def test_deciles_agree_with_the_top_ten_percent_metrics(fixed_leads):
    outcomes, scores = fixed_leads
    rows = score_deciles(outcomes, scores)
    metrics = classification_metrics(outcomes, scores)
    assert sum(row["leads"] for row in rows) == outcomes.size
    assert sum(row["conversions"] for row in rows) == pytest.approx(outcomes.sum())
    assert rows[-1]["cumulative_recall"] == pytest.approx(1.0)
    assert rows[0]["lift"] == pytest.approx(metrics["lift_top_10pct"])
    assert rows[0]["cumulative_recall"] == pytest.approx(metrics["recall_top_10pct"])


def test_cumulative_gains_steps_at_tied_score_groups():
    """Scores 0.9 (won), 0.5 x 2 (one won), 0.1 (lost): points after each group of ties are
    (0, 0), (1/4, 1/2), (3/4, 1), (1, 1)."""
    share_of_leads, share_of_conversions = cumulative_gains([1, 0, 1, 0], [0.9, 0.5, 0.5, 0.1])
    assert share_of_leads.tolist() == [0, 0.25, 0.75, 1]
    assert share_of_conversions.tolist() == [0, 0.5, 1, 1]
