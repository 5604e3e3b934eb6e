"""From validated leads to scores and reasons: one matrix and one predict call per request.

The matrix is built from the shared feature definitions (`feature_matrix`, or `feature_row` for a
single lead, which gives the same numbers), the same ones training used, so the service cannot
derive a feature differently from the pipeline. Reasons come from `leadscore_core.explain`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel

from leadscore_api.batch import LeadColumns
from leadscore_api.schemas import INPUT_NAMES
from leadscore_core.artifact import LoadedModel
from leadscore_core.explain import reasons


def input_columns(leads: Sequence[BaseModel]) -> dict[str, list[Any]]:
    """Input-field columns; an absent optional field is None, which becomes NaN (missing)."""
    return {name: [getattr(lead, name) for lead in leads] for name in INPUT_NAMES}


def score_leads(
    model: LoadedModel, leads: Sequence[BaseModel], threshold: float, explain: bool
) -> list[dict[str, Any]]:
    """One result per lead, in order: score, label, echoed identifiers and optional reasons."""
    if len(leads) != 1:
        return score_columns(model, LeadColumns.of(list(leads)), threshold, explain)[0]
    lead: Any = leads[0]
    row = model.row({name: getattr(lead, name) for name in INPUT_NAMES})
    score = model.predict_one(row)
    result: dict[str, Any] = {"score": score, "label": "high" if score > threshold else "low"}
    if lead.email is not None:
        result["email"] = lead.email
    if lead.contact_id is not None:
        result["contact_id"] = lead.contact_id
    if explain:
        sent = {name: [getattr(lead, name)] for name in model.categories}
        result["reasons"] = reasons(model, np.array([row], dtype=np.float32), sent)[0]
    return [result]


def score_columns(
    model: LoadedModel, leads: LeadColumns, threshold: float, explain: bool
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Results for columnar leads (in order) and their scores as an array, for the metrics."""
    matrix = model.matrix(leads.inputs)
    scores = model.predict_matrix(matrix)
    results: list[dict[str, Any]] = []
    for score, email, contact_id in zip(
        scores.tolist(), leads.emails, leads.contact_ids, strict=True
    ):
        result: dict[str, Any] = {"score": score, "label": "high" if score > threshold else "low"}
        if email is not None:
            result["email"] = email
        if contact_id is not None:
            result["contact_id"] = contact_id
        results.append(result)
    if explain:
        sent = {name: leads.inputs[name] for name in model.categories}
        for result, lead_reasons in zip(results, reasons(model, matrix, sent), strict=True):
            result["reasons"] = lead_reasons
    return results, scores
