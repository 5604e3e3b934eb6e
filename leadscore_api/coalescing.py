"""Single-lead requests that arrive together are scored together: one matrix, one prediction.

Scoring costs XGBoost a fixed setup of about 45 us per call (more under load, when its code and
the model have left the CPU caches) and about 0.2 us per row. Under concurrent load the event
loop reads several requests in one pass and runs their handlers one after the other. The first
`POST /score` of a pass is scored at once, as a lone request always is; the ones after it in the
same pass queue their lead and wait, and one callback at the end of the pass scores all of them
with one `score_leads` call per model. So a lone request never waits (queueing costs it more
than it saves: about 20 us to suspend and resume a request), and under load most requests share
one prediction. Nothing waits for a timer.

Results are those of scoring each lead on its own (XGBoost scores rows independently), and each
request is scored by the model it took when it started, also when a new model was swapped in
meanwhile: queued leads are grouped by that model.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from leadscore_api.scoring import score_leads
from leadscore_core.artifact import LoadedModel

Queued = tuple[BaseModel, "asyncio.Future[dict[str, Any]]"]


class ScoreCoalescer:
    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._scored_in_this_pass = False
        self._queued: list[tuple[LoadedModel, BaseModel, asyncio.Future[dict[str, Any]]]] = []

    def score(
        self, model: LoadedModel, lead: BaseModel
    ) -> dict[str, Any] | asyncio.Future[dict[str, Any]]:
        """The lead's result (score, label, echoed identifiers), or a future of it when it was
        queued. A plain function, not a coroutine: the lone request pays for no coroutine."""
        loop = asyncio.get_running_loop()
        if not self._scored_in_this_pass:
            # Callbacks scheduled now run after every handler the loop already has queued,
            # i.e. at the end of this pass.
            self._scored_in_this_pass = True
            loop.call_soon(self._end_pass)
            return score_leads(model, [lead], self.threshold, False)[0]
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._score_queued)
        self._queued.append((model, lead, future))
        return future

    def _end_pass(self) -> None:
        self._scored_in_this_pass = False

    def _score_queued(self) -> None:
        queued, self._queued = self._queued, []
        groups: dict[int, tuple[LoadedModel, list[Queued]]] = {}
        for model, lead, future in queued:
            groups.setdefault(id(model), (model, []))[1].append((lead, future))
        for model, members in groups.values():
            try:
                results = score_leads(model, [lead for lead, _ in members], self.threshold, False)
            except Exception as exc:  # each waiting request fails as an inline failure would
                for _, future in members:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(members, results, strict=True):
                if not future.done():  # cancelled: its client went away
                    future.set_result(result)
