"""The promotion rule on its own."""

from __future__ import annotations

from leadscore_assets.defs.promotion.gate import HeadToHead, decide_promotion

FLOOR, DROP = 0.70, 0.005


def _decide(challenger_auc, head_to_head=None, warnings=(), **demo):
    return decide_promotion(
        challenger_auc=challenger_auc,
        head_to_head=head_to_head,
        min_auc=FLOOR,
        max_auc_drop=DROP,
        warnings=warnings,
        **demo,
    )


def test_first_model_is_promoted_when_the_floor_holds():
    assert _decide(0.71).passed
    assert not _decide(0.69).passed
    assert "below the floor" in _decide(0.69).reason


def test_small_drops_pass_and_large_drops_fail():
    assert _decide(0.80, HeadToHead(0.796, 0.800, 500)).passed
    assert _decide(0.80, HeadToHead(0.795, 0.800, 500)).passed
    failed = _decide(0.80, HeadToHead(0.7949, 0.800, 500))
    assert not failed.passed
    assert "0.7949" in failed.reason and "0.8000" in failed.reason and "500" in failed.reason


def test_better_than_champion_passes_and_floor_still_applies():
    assert _decide(0.85, HeadToHead(0.85, 0.80, 500)).passed
    assert not _decide(0.65, HeadToHead(0.65, 0.60, 500)).passed


def test_small_data_warnings_refuse_promotion():
    decision = _decide(0.95, None, warnings=["only 600 leads (fewer than 1,000)"])
    assert not decision.passed
    assert "600 leads" in decision.reason


def test_demo_data_is_promoted_only_in_demo_mode():
    refused = _decide(0.95, demo_data=True)
    assert not refused.passed
    assert "synthetic demo data" in refused.reason and "LEADSCORE_DEMO_MODE" in refused.reason
    assert _decide(0.95, demo_data=True, demo_mode=True).passed
    assert _decide(0.95, demo_data=False, demo_mode=False).passed


def test_a_refusal_is_one_line_naming_the_metric_candidate_and_champion_values():
    decision = decide_promotion(
        challenger_auc=0.61,
        head_to_head=HeadToHead(0.6123, 0.8712, 1_200, champion="the champion lead_scoring/3"),
        min_auc=0.5,
        max_auc_drop=DROP,
        candidate="lead_scoring/4",
    )
    assert not decision.passed
    assert decision.reason == (
        "lead_scoring/4 not promoted: ROC AUC 0.6123 is worse than the champion lead_scoring/3's "
        "0.8712 by more than 0.0050 on the same 1,200 holdout rows"
    )
    assert "\n" not in decision.reason
