"""The promotion rule, as a pure function the gate check and its tests share.

Every decision is one line that names the candidate, the metric and the values compared, e.g.
`lead_scoring/4 not promoted: ROC AUC 0.5123 is worse than the champion lead_scoring/3's 0.8712 by
more than 0.0050 on the same 1,200 holdout rows`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reason: str


@dataclass(frozen=True)
class HeadToHead:
    """Challenger and champion ROC AUC on the same holdout rows."""

    challenger_auc: float
    champion_auc: float
    rows: int
    champion: str = "the champion"


def decide_promotion(
    *,
    challenger_auc: float,
    head_to_head: HeadToHead | None,
    min_auc: float,
    max_auc_drop: float,
    warnings: Sequence[str] = (),
    demo_data: bool = False,
    demo_mode: bool = False,
    candidate: str = "candidate",
) -> GateDecision:
    """Promote when the challenger clears the floor on its holdout, is not worse than the champion
    by more than `max_auc_drop` on the same rows, and was trained on enough data to judge.
    `head_to_head` is None when there is no champion yet. A model trained on synthetic demo data
    (`demo_data`) is only promoted in demo mode, so demo data can never reach production."""
    refused = f"{candidate} not promoted:"
    if demo_data and not demo_mode:
        return GateDecision(
            False,
            f"{refused} trained on synthetic demo data and demo mode is off "
            "(set LEADSCORE_DEMO_MODE=true to promote demo models)",
        )
    if warnings:
        return GateDecision(False, f"{refused} " + "; ".join(warnings))
    if challenger_auc < min_auc:
        return GateDecision(
            False, f"{refused} ROC AUC {challenger_auc:.4f} is below the floor {min_auc:.4f}"
        )
    if head_to_head is None:
        return GateDecision(
            True,
            f"{candidate} promoted: ROC AUC {challenger_auc:.4f} >= floor {min_auc:.4f}; "
            "no champion yet",
        )
    challenger, champion = head_to_head.challenger_auc, head_to_head.champion_auc
    if challenger < champion - max_auc_drop:
        return GateDecision(
            False,
            f"{refused} ROC AUC {challenger:.4f} is worse than {head_to_head.champion}'s "
            f"{champion:.4f} by more than {max_auc_drop:.4f} on the same {head_to_head.rows:,} "
            "holdout rows",
        )
    return GateDecision(
        True,
        f"{candidate} promoted: ROC AUC {challenger:.4f} vs {head_to_head.champion}'s "
        f"{champion:.4f} on the same {head_to_head.rows:,} holdout rows "
        f"(floor {min_auc:.4f}, allowed drop {max_auc_drop:.4f})",
    )
