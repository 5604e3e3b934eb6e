"""Why a lead got its score: the features with the largest exact tree-SHAP contributions, in words.

Vectorised over a model matrix (one SHAP call for all rows), so that the scoring service and the
pipeline compute the same reasons the same way; it needs only the model, the matrix and, for
categorical features, the values the caller sent (to say when an unknown value was scored as
the fallback category).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from leadscore_core.artifact import LoadedModel
from leadscore_core.features import INPUT_FIELDS_BY_NAME, Feature

TOP_REASONS = 3


def reasons(
    model: LoadedModel,
    matrix: np.ndarray,
    sent: Mapping[str, Sequence[object]] | None = None,
) -> list[list[dict[str, Any]]]:
    """Per row of `matrix`, the TOP_REASONS features with the largest absolute contribution,
    strongest first (features contributing exactly 0 are left out): feature, value the model saw,
    signed contribution in log-odds, and a sentence built from the feature's label.

    `sent` maps a categorical feature to the values the caller sent, row by row; a value the
    model does not know reads "Unassigned (sent as 'TikTok')".
    """
    contributions = model.contributions(matrix)[:, :-1]  # the last column is the bias
    strongest = np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, :TOP_REASONS]
    sent = sent or {}
    return [
        [
            _reason(
                model,
                model.features[j],
                float(matrix[i, j]),
                float(contributions[i, j]),
                sent[model.features[j].name][i] if model.features[j].name in sent else None,
            )
            for j in strongest[i]
            if contributions[i, j] != 0
        ]
        for i in range(len(matrix))
    ]


def _reason(
    model: LoadedModel, feature: Feature, value: float, contribution: float, sent: object
) -> dict[str, Any]:
    shown: float | str | bool | None
    if math.isnan(value):
        shown, words = None, "unknown"
    elif feature.kind == "categorical":
        shown = words = model.categories[feature.name][int(value)]
        if sent is not None and sent != shown:
            words = f"{shown} (sent as {sent!r})"
    elif feature.name in INPUT_FIELDS_BY_NAME and INPUT_FIELDS_BY_NAME[feature.name].kind == "bool":
        shown = bool(value)
        words = "yes" if shown else "no"
    else:
        shown = int(value) if value.is_integer() else round(value, 2)
        words = str(shown)
    direction = "raises" if contribution > 0 else "lowers"
    label = feature.label[:1].upper() + feature.label[1:]
    return {
        "feature": feature.name,
        "value": shown,
        "contribution": contribution,
        "text": f"{label}: {words} — {direction} the score",
    }
