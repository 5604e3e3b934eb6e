"""Batches and explanations run in a bounded pool of worker threads, off the event loop: however
many arrive, at most `LEADSCORE_WORKER_THREADS` are computed at once, and plain `/score` requests
keep being answered meanwhile."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import pytest

from leadscore_api import routes
from leadscore_api.main import create_app

from .support import EXAMPLE_LEAD, ModelFiles


class Gate:
    """Wraps the scoring functions: explained calls wait until released, and their overlap is
    counted."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0
        self.started = 0

    def wrap(self, real: Any) -> Any:
        return lambda model, leads, threshold, explain: self.call(
            real, model, leads, threshold, explain
        )

    def call(self, real, model, leads, threshold, explain):
        if explain:
            with self.lock:
                self.running += 1
                self.started += 1
                self.most_at_once = max(self.most_at_once, self.running)
            try:
                assert self.release.wait(timeout=30)
                return real(model, leads, threshold, explain)
            finally:
                with self.lock:
                    self.running -= 1
        return real(model, leads, threshold, explain)


@pytest.mark.parametrize("threads", [1, 2])
def test_explained_work_is_bounded_and_score_keeps_answering(
    model_files: ModelFiles, publish, settings_for, monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    publish(model_files.v1)
    gate = Gate()
    for name in ("score_leads", "score_columns"):
        monkeypatch.setattr(routes, name, gate.wrap(getattr(routes, name)))
    app = create_app(settings_for(worker_threads=threads))

    async def scenario() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                heavy = [
                    asyncio.create_task(
                        client.post(
                            "/score/batch?explain=true", json={"leads": [EXAMPLE_LEAD] * 50}
                        )
                    )
                    for _ in range(3)
                ] + [asyncio.create_task(client.post("/score?explain=true", json=EXAMPLE_LEAD))]
                deadline = time.monotonic() + 10
                while gate.started < threads and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.2)  # time for any unbounded extra work to start
                assert gate.started == threads
                for _ in range(20):  # the event loop is free: plain scores are answered
                    response = await client.post("/score", json=EXAMPLE_LEAD)
                    assert response.status_code == 200
                assert not any(task.done() for task in heavy)
                gate.release.set()
                return await asyncio.gather(*heavy)

    responses = asyncio.run(scenario())
    assert [r.status_code for r in responses] == [200] * 4
    assert gate.most_at_once == threads
    assert all("reasons" in r for r in responses[0].json()["results"])
