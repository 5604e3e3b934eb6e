"""Lead scores snapshots from a real model, scored the way the pipeline scores open leads: the
whole batch in one prediction, with the explanation code `POST /score?explain=true` uses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from leadscore_api.schemas import Lead
from leadscore_api.scoring import score_leads
from leadscore_core.artifact import LoadedModel
from leadscore_core.lead_scores import ScoredLeads, ScoringRun, scored_leads, write_snapshot
from leadscore_core.settings import DEFAULT_HIGH_THRESHOLD

FEATURES_AS_OF = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)


def score_open_leads(
    model: LoadedModel,
    leads: Sequence[Mapping[str, Any]],
    contact_ids: Sequence[object],
    *,
    emails: Sequence[str | None] | None = None,
    high_threshold: float = DEFAULT_HIGH_THRESHOLD,
    scored_at: datetime | None = None,
) -> ScoredLeads:
    """`leads` hold the API's input fields; ids and emails are given separately, as the mart
    has them."""
    validated = [Lead.model_validate(dict(lead)) for lead in leads]
    results = score_leads(model, validated, high_threshold, explain=True)
    return scored_leads(
        ScoringRun.of(model, high_threshold=high_threshold, scored_at=scored_at),
        contact_ids=contact_ids,
        emails=emails if emails is not None else [None] * len(leads),
        scores=[result["score"] for result in results],
        reasons=[result["reasons"] for result in results],
        features_as_of=[FEATURES_AS_OF] * len(leads),
    )


def publish_scores(path: Path, scored: ScoredLeads) -> ScoredLeads:
    write_snapshot(path, scored)
    return scored
