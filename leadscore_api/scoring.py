"""From validated leads to scores and reasons: one matrix and one predict call per request.

The matrix is built by the shared `feature_matrix` (through `LoadedModel`), the same function
training used, so the service cannot derive a feature differently from the pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel

from leadscore_api.schemas import INPUT_NAMES
from leadscore_core.artifact import LoadedModel
from leadscore_core.features import INPUT_FIELDS_BY_NAME, Feature

TOP_REASONS = 3


def input_columns(leads: Sequence[BaseModel]) -> dict[str, list[Any]]:
    """Input-field columns; an absent optional field is None, which becomes NaN (missing)."""
    return {name: [getattr(lead, name) for lead in leads] for name in INPUT_NAMES}


def score_leads(
    model: LoadedModel, leads: Sequence[BaseModel], threshold: float, explain: bool
) -> list[dict[str, Any]]:
    """One result per lead, in order: score, label, echoed identifiers and optional reasons."""
    if len(leads) == 1:
        matrix = model.row({name: getattr(leads[0], name) for name in INPUT_NAMES})
        scores = [model.predict_one(matrix)]
    else:
        matrix = model.matrix(input_columns(leads))
        scores = model.predict_matrix(matrix).tolist()
    results: list[dict[str, Any]] = []
    for lead, score in zip(leads, scores, strict=True):
        result: dict[str, Any] = {"score": score, "label": "high" if score > threshold else "low"}
        if lead.email is not None:
            result["email"] = lead.email
        if lead.contact_id is not None:
            result["contact_id"] = lead.contact_id
        results.append(result)
    if explain:
        for result, reasons in zip(results, explain_rows(model, matrix, leads), strict=True):
            result["reasons"] = reasons
    return results


def explain_rows(
    model: LoadedModel, matrix: np.ndarray, leads: Sequence[BaseModel]
) -> list[list[dict[str, Any]]]:
    """The TOP_REASONS features with the largest exact tree-SHAP contribution, per row."""
    contributions = model.contributions(matrix)[:, :-1]  # the last column is the bias
    strongest = np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, :TOP_REASONS]
    return [
        [
            _reason(model, model.features[j], float(matrix[i, j]), float(contributions[i, j]), lead)
            for j in strongest[i]
            if contributions[i, j] != 0
        ]
        for i, lead in enumerate(leads)
    ]


def _reason(
    model: LoadedModel, feature: Feature, value: float, contribution: float, lead: BaseModel
) -> dict[str, Any]:
    shown: float | str | bool | None
    if math.isnan(value):
        shown, words = None, "unknown"
    elif feature.kind == "categorical":
        shown = words = model.categories[feature.name][int(value)]
        sent = getattr(lead, feature.name)
        if sent != shown:
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
