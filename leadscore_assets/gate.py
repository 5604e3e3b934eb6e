"""The promotion rule, as a pure function the gate check and its tests share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reason: str


def decide_promotion(
    *,
    challenger_auc: float,
    champion_auc: float | None,
    min_auc: float,
    max_auc_drop: float,
    warnings: Sequence[str] = (),
) -> GateDecision:
    """Promote when the challenger clears the floor, is not worse than the champion by more than
    `max_auc_drop` (on the same holdout rows), and was trained on enough data to judge."""
    if warnings:
        return GateDecision(False, "not promoted: " + "; ".join(warnings))
    if challenger_auc < min_auc:
        return GateDecision(
            False, f"not promoted: ROC AUC {challenger_auc:.4f} is below the floor {min_auc:.4f}"
        )
    if champion_auc is None:
        return GateDecision(
            True, f"promoted: ROC AUC {challenger_auc:.4f} >= floor {min_auc:.4f}; no champion yet"
        )
    if challenger_auc < champion_auc - max_auc_drop:
        return GateDecision(
            False,
            f"not promoted: ROC AUC {challenger_auc:.4f} is worse than the champion's "
            f"{champion_auc:.4f} by more than {max_auc_drop:.4f}",
        )
    return GateDecision(
        True,
        f"promoted: ROC AUC {challenger_auc:.4f} vs champion {champion_auc:.4f} "
        f"(floor {min_auc:.4f}, allowed drop {max_auc_drop:.4f})",
    )
