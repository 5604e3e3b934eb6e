"""Single-lead requests that arrive together are scored with one prediction, and each gets
exactly the result it would have got alone, from the model it started with."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from leadscore_api.coalescing import ScoreCoalescer
from leadscore_api.main import create_app
from leadscore_api.schemas import Lead
from leadscore_api.scoring import score_leads
from leadscore_core.artifact import load_model_bytes

from .support import ModelFiles, sample_leads

THRESHOLD = 0.5


def _alone(model, lead) -> dict[str, Any]:
    return score_leads(model, [lead], THRESHOLD, False)[0]


def test_leads_queued_in_one_pass_are_scored_together_by_their_own_model(
    model_files: ModelFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1, v2 = load_model_bytes(model_files.v1), load_model_bytes(model_files.v2)
    leads = [Lead.model_validate(lead) for lead in sample_leads(30)]
    models = [v1 if i % 3 else v2 for i in range(len(leads))]
    calls: list[int] = []
    real_score_leads = score_leads

    def counting(model, batch, threshold, explain):
        calls.append(len(batch))
        return real_score_leads(model, batch, threshold, explain)

    monkeypatch.setattr("leadscore_api.coalescing.score_leads", counting)

    async def all_at_once() -> list[dict[str, Any]]:
        coalescer = ScoreCoalescer(THRESHOLD)

        async def one(model, lead) -> dict[str, Any]:
            result = coalescer.score(model, lead)
            return await result if isinstance(result, asyncio.Future) else result

        return await asyncio.gather(
            *(one(model, lead) for model, lead in zip(models, leads, strict=True))
        )

    results = asyncio.run(all_at_once())
    assert results == [_alone(m, lead) for m, lead in zip(models, leads, strict=True)]
    # The first is scored at once; the rest wait for the end of the pass: one call per model.
    queued = models[1:]
    assert calls == [1, queued.count(v1), queued.count(v2)]


def test_a_lone_request_is_scored_without_waiting(model_files: ModelFiles) -> None:
    model = load_model_bytes(model_files.v1)
    lead = Lead.model_validate(sample_leads(1)[0])

    async def one_after_another() -> list[dict[str, Any]]:
        coalescer = ScoreCoalescer(THRESHOLD)
        results = []
        for _ in range(3):
            result = coalescer.score(model, lead)
            assert not isinstance(result, asyncio.Future)
            results.append(result)
            await asyncio.sleep(0)  # the next request comes in a later pass
        assert not coalescer._queued
        return results

    assert asyncio.run(one_after_another()) == [_alone(model, lead)] * 3


def test_concurrent_requests_through_the_app_match_single_scores(
    model_files: ModelFiles, publish, settings_for
) -> None:
    publish(model_files.v1)
    leads = sample_leads(40)
    model = load_model_bytes(model_files.v1)
    expected = [_alone(model, Lead.model_validate(lead))["score"] for lead in leads]
    app = create_app(settings_for(high_threshold=THRESHOLD))

    async def concurrently() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await asyncio.gather(*(client.post("/score", json=lead) for lead in leads))

    responses = asyncio.run(concurrently())
    assert [r.status_code for r in responses] == [200] * len(leads)
    assert [r.json()["score"] for r in responses] == pytest.approx(expected, abs=1e-12)
    assert {r.json()["model_version"] for r in responses} == {"test/1"}
