"""How a score reads for sales: the `high`/`low` label and the tiers A, B, C, D.

One definition for everything that shows a score to people: the API's label, the evaluation's
conversion-by-tier table, the lead scores snapshot and the CRM write-back. A lead counts as above
a cut-off when its score is strictly greater than it (the API labels a lead "high" when
score > threshold), so tier A is exactly the leads labelled "high".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from leadscore_core.settings import DEFAULT_HIGH_THRESHOLD

HIGH_LABEL = "high"
LOW_LABEL = "low"
# The tier boundaries below the high threshold, which is always the last (top) boundary.
LOWER_TIER_BOUNDARIES = (0.2, 0.5)


@dataclass(frozen=True)
class ScoreTier:
    """Leads with lower < score <= upper (the lowest tier also takes a score of exactly 0)."""

    name: str
    lower: float
    upper: float

    @property
    def letter(self) -> str:
        """The tier's short name, "A" for "A (> 0.8)": what the API and the CRM show."""
        return self.name.split(" ", 1)[0]


def score_tiers(
    boundaries: Sequence[float] = (*LOWER_TIER_BOUNDARIES, DEFAULT_HIGH_THRESHOLD),
) -> tuple[ScoreTier, ...]:
    """Sales tiers A, B, C, ... from the highest scores down, split at ascending `boundaries`.

    The last boundary is the routing threshold, so tier A is exactly the leads the API labels
    "high" and the workflow routes; the default gives A (> 0.8), B (0.5–0.8), C (0.2–0.5),
    D (≤ 0.2).
    """
    cuts = [float(b) for b in boundaries]
    if not cuts:
        raise ValueError("score tiers need at least one boundary")
    outside = [cut for cut in cuts if not 0 < cut < 1]
    if outside:
        raise ValueError(f"a tier boundary must be strictly between 0 and 1, got {outside[0]}")
    if any(b <= a for a, b in zip(cuts, cuts[1:], strict=False)):
        raise ValueError(f"tier boundaries must be strictly ascending, got {cuts}")
    edges = [0.0, *cuts, 1.0]
    tiers = []
    for rank, upper_index in enumerate(range(len(edges) - 1, 0, -1)):
        lower, upper = edges[upper_index - 1], edges[upper_index]
        letter = chr(ord("A") + rank)
        if upper == 1.0:
            label = f"{letter} (> {lower:g})"
        elif lower == 0.0:
            label = f"{letter} (≤ {upper:g})"
        else:
            label = f"{letter} ({lower:g}–{upper:g})"
        tiers.append(ScoreTier(label, lower, upper))
    return tuple(tiers)


def sales_tiers(high_threshold: float = DEFAULT_HIGH_THRESHOLD) -> tuple[ScoreTier, ...]:
    """The sales tiers whose top tier is exactly the leads above `high_threshold`."""
    return score_tiers((*LOWER_TIER_BOUNDARIES, high_threshold))


SALES_TIERS = sales_tiers()


def score_labels(scores: ArrayLike, high_threshold: float) -> list[str]:
    """`high` for each score strictly above the threshold, else `low` (the API's rule)."""
    above = np.asarray(scores, dtype=np.float64) > high_threshold
    return [HIGH_LABEL if is_high else LOW_LABEL for is_high in above.tolist()]


def tier_letters(scores: ArrayLike, tiers: Sequence[ScoreTier] = SALES_TIERS) -> list[str]:
    """Each score's tier letter; `tiers` run from the highest down, as `score_tiers` makes them."""
    values = np.asarray(scores, dtype=np.float64)
    # A score at or below a tier's lower edge belongs further down: count those edges.
    lower_edges = np.array([tier.lower for tier in tiers[:-1]], dtype=np.float64)
    index = (values[:, np.newaxis] <= lower_edges[np.newaxis, :]).sum(axis=1)
    letters = [tier.letter for tier in tiers]
    return [letters[i] for i in index.tolist()]
