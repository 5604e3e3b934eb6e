"""Scores by contact: `GET /leads/{contact_id}/score` and `GET /leads/score?email=...`.

A CRM's "new contact" event carries a contact id or an email, not the lead's web activity, so
these routes answer from the lead scores snapshot the pipeline publishes beside the model
(leadscore_core/lead_scores.py): the score, label, tier and reasons of every open lead, as of the
pipeline's last scoring run. The snapshot is hot-reloaded like the model (`PublishedFile`), and
each lookup is one indexed read of the SQLite file, fast enough to run on the event loop.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Path, Query
from fastapi.responses import Response
from prometheus_client import Counter, Gauge
from pydantic import BaseModel, Field
from pydantic_core import to_json

from leadscore_api.metrics import ApiMetrics
from leadscore_api.routes import API_KEY_HEADER, JSON, api_key_guard
from leadscore_api.schemas import EMAIL_MAX_LENGTH, Problem, Reason, ValidationProblem
from leadscore_api.serving import FileSignature, PublishedFile, stat_signature
from leadscore_api.settings import ApiSettings
from leadscore_core.features import MAX_ID_LENGTH
from leadscore_core.lead_scores import (
    LeadScore,
    LeadScoresSnapshot,
    SnapshotFileError,
    open_snapshot,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedLeadScores:
    snapshot: LeadScoresSnapshot
    loaded_at: datetime


class LeadScoresMetrics:
    """The snapshot's series, in the app's own registry."""

    def __init__(self, metrics: ApiMetrics) -> None:
        registry = metrics.registry
        self.reloads = Counter(
            "leadscore_lead_scores_reloads",
            "Lead scores snapshots loaded and swapped in (the startup load included).",
            registry=registry,
        )
        self.reload_failures = Counter(
            "leadscore_lead_scores_reload_failures",
            "Lead scores snapshot files rejected (damaged, not a snapshot, unreadable).",
            registry=registry,
        )
        self.rows = Gauge(
            "leadscore_lead_scores_rows", "Open leads in the served snapshot.", registry=registry
        )
        self.scored_at = Gauge(
            "leadscore_lead_scores_scored_timestamp_seconds",
            "Unix time the pipeline scored the served snapshot's leads (alert on its age).",
            registry=registry,
        )


class LeadScoresHolder(PublishedFile[ServedLeadScores]):
    """Holds the served lead scores snapshot and the state of its file as last seen."""

    what = "lead scores snapshot"
    rejected_errors = (SnapshotFileError,)

    def __init__(self, settings: ApiSettings, metrics: LeadScoresMetrics) -> None:
        super().__init__(settings.served_lead_scores_path)
        self.metrics = metrics
        self.high_threshold = settings.high_threshold

    def _open(self) -> tuple[None, FileSignature]:
        # The signature is taken before SQLite opens the file: a publish racing the open makes
        # the next poll load the same new file again, never skip it.
        return None, stat_signature(self.path)

    def _validate(self, opened: None) -> ServedLeadScores:
        return ServedLeadScores(open_snapshot(self.path), datetime.now(UTC))

    def _same(self, current: ServedLeadScores, new: ServedLeadScores) -> bool:
        return current.snapshot.info.snapshot_id == new.snapshot.info.snapshot_id

    def _swapped(self, served: ServedLeadScores) -> None:
        info = served.snapshot.info
        self.metrics.reloads.inc()
        self.metrics.rows.set(info.row_count)
        self.metrics.scored_at.set(datetime.fromisoformat(info.scored_at).timestamp())
        log.info(
            "serving lead scores of %d open leads (model %s, scored %s)",
            info.row_count,
            info.model_version,
            info.scored_at,
        )
        if info.high_threshold != self.high_threshold:
            log.warning(
                "the lead scores snapshot labels and tiers leads at %s, this service at %s: "
                "set LEADSCORE_HIGH_THRESHOLD to the same value for the pipeline and the API",
                info.high_threshold,
                self.high_threshold,
            )

    def _rejected(self) -> None:
        self.metrics.reload_failures.inc()


class LeadScoreResponse(BaseModel):
    """An open lead's score as the pipeline last computed it."""

    contact_id: str
    email: str | None
    score: float = Field(ge=0, le=1, description="Probability that the lead becomes closed-won.")
    label: Literal["high", "low"] = Field(
        description="`high` when the score is above the high threshold (tier A)."
    )
    tier: str = Field(description="A (> 0.8), B (0.5–0.8], C (0.2–0.5] or D (≤ 0.2).")
    reasons: list[Reason] = Field(description="The top 3 reasons, as `POST /score?explain=true`.")
    model_version: str = Field(description="The model that scored the lead.")
    scored_at: datetime = Field(description="When the pipeline scored the lead.")
    features_as_of: datetime | None = Field(
        description="The cut-off of the web activity the score is based on."
    )


def _answer(lead: LeadScore) -> Response:
    return Response(
        to_json(
            {
                "contact_id": lead.contact_id,
                "email": lead.email,
                "score": lead.score,
                "label": lead.label,
                "tier": lead.tier,
                "reasons": lead.reasons,
                "model_version": lead.model_version,
                "scored_at": lead.scored_at,
                "features_as_of": lead.features_as_of,
            }
        ),
        media_type=JSON,
    )


def _responses(guarded: bool) -> dict[int | str, dict[str, Any]]:
    problems: dict[int | str, dict[str, Any]] = {
        404: {"model": Problem, "description": "No open lead with this id or email is scored."},
        422: {"model": ValidationProblem, "description": "Invalid input; `field` names it."},
        503: {"model": Problem, "description": "No valid lead scores snapshot is loaded yet."},
    }
    if guarded:
        problems[401] = {"model": Problem, "description": f"Missing or wrong {API_KEY_HEADER}."}
    return problems


def build_lead_scores_router(settings: ApiSettings, metrics: ApiMetrics) -> APIRouter:
    """The routes, with their own snapshot holder kept current for the app's lifetime."""
    holder = LeadScoresHolder(settings, LeadScoresMetrics(metrics))

    def lifespan(_: FastAPI) -> Any:
        return holder.kept_current(settings.model_poll_seconds)

    router = APIRouter(lifespan=lifespan, tags=["lead scores"])
    guarded = [api_key_guard(settings.api_key)] if settings.api_key else []
    responses = _responses(bool(guarded))
    retry_after = {"Retry-After": str(math.ceil(settings.model_poll_seconds))}

    def served_snapshot() -> LeadScoresSnapshot:
        served = holder.current
        if served is None:
            raise HTTPException(503, holder.not_ready_reason, headers=retry_after)
        return served.snapshot

    def as_of(snapshot: LeadScoresSnapshot) -> str:
        info = snapshot.info
        return f"the lead scores of {info.scored_at} (model {info.model_version})"

    @router.get(
        "/leads/score",
        response_model=LeadScoreResponse,
        dependencies=guarded,
        responses={
            **responses,
            409: {"model": Problem, "description": "Several leads have this email."},
        },
    )
    async def lead_score_by_email(
        email: str = Query(
            min_length=1, max_length=EMAIL_MAX_LENGTH, description="Matched ignoring case."
        ),
    ) -> Response:
        """An open lead's score, looked up by its email."""
        snapshot = served_snapshot()
        leads = snapshot.by_email(email)
        if not leads:
            raise HTTPException(404, f"no open lead with email {email!r} in {as_of(snapshot)}")
        if len(leads) > 1:
            ids = ", ".join(repr(lead.contact_id) for lead in leads)
            raise HTTPException(
                409, f"{len(leads)} open leads have email {email!r} (contact ids {ids}); ask by id"
            )
        return _answer(leads[0])

    @router.get(
        "/leads/{contact_id}/score",
        response_model=LeadScoreResponse,
        dependencies=guarded,
        responses=responses,
    )
    async def lead_score(
        contact_id: str = Path(
            min_length=1, max_length=MAX_ID_LENGTH, description="The CRM's contact id."
        ),
    ) -> Response:
        """An open lead's score, label, tier and top reasons, by its CRM contact id."""
        snapshot = served_snapshot()
        lead = snapshot.by_contact_id(contact_id)
        if lead is None:
            raise HTTPException(
                404,
                f"no score for contact {contact_id!r}: it is not an open lead in {as_of(snapshot)} "
                "(a new contact is scored by the pipeline's next run)",
            )
        return _answer(lead)

    return router
