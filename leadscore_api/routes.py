"""The service's endpoints, bound to one app's model holder, metrics and settings."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from typing import Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Request, Security
from fastapi.params import Depends as DependsParam
from fastapi.responses import Response
from fastapi.security import APIKeyHeader
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr
from pydantic_core import to_json

from leadscore_api.batch import LeadColumns, columnar_batch
from leadscore_api.metrics import ApiMetrics
from leadscore_api.parsing import explain_flag, json_body_openapi, parse_body
from leadscore_api.schemas import (
    BATCH_RESPONSE_EXAMPLE,
    NOT_READY_EXAMPLE,
    SCORE_RESPONSE_EXAMPLE,
    VALIDATION_PROBLEM_EXAMPLE,
    BatchResponse,
    ModelInfo,
    Problem,
    ReadyResponse,
    ScoreRequest,
    ScoreResponse,
    ValidationProblem,
    batch_request_model,
)
from leadscore_api.scoring import score_columns, score_leads
from leadscore_api.serving import ModelHolder, ServedModel
from leadscore_api.settings import ApiSettings
from leadscore_core.artifact import LoadedModel

API_KEY_HEADER = "X-API-Key"
# A single lead is well under 1 KiB; batches get 1 KiB per lead.
SCORE_BODY_LIMIT = 16 * 1024
BATCH_BYTES_PER_LEAD = 1024
JSON = "application/json"


def api_key_guard(expected: SecretStr) -> DependsParam:
    expected_bytes = expected.get_secret_value().encode()
    header = APIKeyHeader(
        name=API_KEY_HEADER, auto_error=False, description="Required when LEADSCORE_API_KEY is set."
    )

    async def require_api_key(request: Request, key: str | None = Security(header)) -> None:
        # The body first, as the scoring routes do: an oversized body is a 413 whatever else is
        # wrong, and the same 413 whether its size was declared (Content-Length) or not (chunked).
        if request.method == "POST":
            await request.body()
        # Compared as bytes: compare_digest rejects non-ASCII str, and headers can carry any octet.
        if key is None or not secrets.compare_digest(key.encode(), expected_bytes):
            raise HTTPException(401, f"missing or wrong {API_KEY_HEADER} header")

    return Depends(require_api_key)


def _problem_responses(guarded: bool) -> dict[int | str, dict[str, Any]]:
    problems: dict[int | str, dict[str, Any]] = {
        422: {
            "model": ValidationProblem,
            "description": "Invalid input; `field` names it.",
            "content": {JSON: {"example": VALIDATION_PROBLEM_EXAMPLE}},
        },
        503: {
            "model": Problem,
            "description": "No valid model is loaded yet.",
            "content": {JSON: {"example": NOT_READY_EXAMPLE}},
        },
    }
    if guarded:
        problems[401] = {"model": Problem, "description": f"Missing or wrong {API_KEY_HEADER}."}
    return problems


def _example(value: dict[str, Any]) -> dict[str, Any]:
    return {"content": {JSON: {"example": value}}}


def build_router(holder: ModelHolder, metrics: ApiMetrics, settings: ApiSettings) -> APIRouter:
    threshold = settings.high_threshold
    retry_after = {"Retry-After": str(math.ceil(settings.model_poll_seconds))}
    guarded = [api_key_guard(settings.api_key)] if settings.api_key else []
    batch_request = batch_request_model(settings.max_batch)
    problems = _problem_responses(bool(guarded))
    body_problems = {
        **problems,
        500: {
            "model": Problem,
            "description": "The model produced a non-finite score; no score is served.",
        },
        413: {
            "description": "Body over the route's size limit (plain text).",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
    }
    router = APIRouter()
    # Batches and explanations (SHAP costs far more than a score) queue for a few threads, so
    # that however many arrive they cannot take every core from the event loop serving /score.
    workers = anyio.CapacityLimiter(settings.worker_threads)

    async def in_worker(function: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(function, *args, limiter=workers)

    def served_model() -> ServedModel:
        served = holder.current
        if served is None:
            raise HTTPException(503, holder.not_ready_reason, headers=retry_after)
        return served

    @router.post(
        "/score",
        response_model=ScoreResponse,
        dependencies=guarded,
        responses={**body_problems, 200: _example(SCORE_RESPONSE_EXAMPLE)},
        max_body_size=SCORE_BODY_LIMIT,
        openapi_extra=json_body_openapi(ScoreRequest),
    )
    async def score(request: Request) -> Response:
        """Score one lead: probability of closed-won, `high` above the serving threshold."""
        raw_body = await request.body()  # before anything else: see require_api_key
        model = served_model().model
        lead = parse_body(ScoreRequest, raw_body)
        if explain_flag(request) or lead.explain:
            result = (await in_worker(score_leads, model, [lead], threshold, True))[0]
        else:
            result = score_leads(model, [lead], threshold, False)[0]
        metrics.scores.observe(model.version, result["score"])
        result["model_version"] = model.version
        return Response(to_json(result), media_type=JSON)

    def parse_and_score_batch(model: LoadedModel, raw_body: bytes, explain: bool) -> bytes:
        # Plainly valid batches are validated as columns; anything else goes through the
        # pydantic model, which says exactly what is wrong (leadscore_api/batch.py).
        columnar = columnar_batch(raw_body, settings.max_batch)
        if columnar is None:
            batch: Any = parse_body(batch_request, raw_body)
            leads, explain_body = LeadColumns.of(batch.leads), batch.explain
        else:
            leads, explain_body = columnar
        results, scores = score_columns(model, leads, threshold, explain or explain_body)
        metrics.scores.observe_many(model.version, scores)
        return to_json({"model_version": model.version, "results": results})

    @router.post(
        "/score/batch",
        response_model=BatchResponse,
        dependencies=guarded,
        responses={**body_problems, 200: _example(BATCH_RESPONSE_EXAMPLE)},
        max_body_size=settings.max_batch * BATCH_BYTES_PER_LEAD,
        openapi_extra=json_body_openapi(batch_request),
    )
    async def score_batch(request: Request) -> Response:
        """Score up to `max_batch` leads with one model; results keep the request's order."""
        raw_body = await request.body()
        model = served_model().model
        explain = explain_flag(request)
        # Off the event loop, so single-lead requests keep flowing while a big batch is scored.
        body = await in_worker(parse_and_score_batch, model, raw_body, explain)
        return Response(body, media_type=JSON)

    @router.get("/model", response_model=ModelInfo, dependencies=guarded, responses=problems)
    async def model_info() -> dict[str, Any]:
        """The served model's metadata: version, training provenance, features and metrics."""
        served = served_model()
        return {
            **served.model.metadata.document(),
            "model_version": served.model.version,
            "serving_threshold": threshold,
            "file_sha256": served.model.file_sha256,
            "loaded_at": served.loaded_at,
        }

    @router.get("/health")
    async def health() -> dict[str, str]:
        """The process is up (says nothing about the model; see /ready)."""
        return {"status": "ok"}

    @router.get("/ready", response_model=ReadyResponse, responses={503: problems[503]})
    async def ready() -> dict[str, Any]:
        """200 only while a valid model is loaded."""
        model = served_model().model
        return {
            "status": "ready",
            "model_version": model.version,
            "predictor": model.predictor.kind,
            "last_reload_error": holder.last_error,
        }

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
    )
    async def prometheus_metrics() -> Response:
        """Prometheus exposition of this process's metrics."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
