"""The open leads of the mart, scored in one batch with the published model, exactly as `/score`.

An open lead is a contact whose outcome is not decided yet: an open deal, or no deal at all (the
mart's `outcome`). Its score is computed the way the scoring API computes `POST /score`: the
published model file is loaded as the API loads it (`load_model(path, compiled_dir=path.parent)`,
so the compiled predictor scores when one is published beside the model), the input columns are
the mart's columns named by `INPUT_FIELDS` (whatever fields the specification holds), the matrix
is the shared `feature_matrix`, and the reasons are `leadscore_core.explain`'s, as
`POST /score?explain=true` gives them. Scores are therefore bit-identical to the API's.

`score_and_publish` is the whole step (read, predict, explain, write the warehouse tables, publish
the snapshot), timed per stage; the `lead_scores` asset and the benchmark both run it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from leadscore_assets.defs.scoring.tables import write_score_tables
from leadscore_assets.defs.training.training import input_columns
from leadscore_assets.defs.warehouse.assets import MART_TABLE
from leadscore_assets.settings import PipelineSettings
from leadscore_assets.warehouse import Warehouse
from leadscore_core.artifact import LoadedModel, load_model
from leadscore_core.explain import reasons
from leadscore_core.features import ID_COLUMNS, INPUT_FIELDS
from leadscore_core.lead_scores import (
    ScoredLeads,
    ScoringRun,
    SnapshotInfo,
    scored_leads,
    write_snapshot,
)

# The mart's `outcome` values of a lead that may still convert: the leads sales works on.
OPEN_OUTCOMES = ("open", "no_deal")
FEATURES_AS_OF_COLUMN = "features_as_of"


def open_leads_query() -> str:
    """Every open lead's ids, feature cut-off and input fields, by contact id."""
    columns = [*ID_COLUMNS, FEATURES_AS_OF_COLUMN, *(f.name for f in INPUT_FIELDS)]
    outcomes = ", ".join(f"'{outcome}'" for outcome in OPEN_OUTCOMES)
    return (
        f"SELECT {', '.join(columns)} FROM {MART_TABLE} "
        f"WHERE outcome IN ({outcomes}) ORDER BY contact_id"
    )


def load_published_model(path: Path) -> LoadedModel:
    """The published model, loaded as the scoring API loads it."""
    return load_model(path, compiled_dir=path.parent)


def _sent_values(column: pd.Series) -> list[object]:
    """A categorical input as the API receives it: the text, or None when missing."""
    return column.astype(object).where(column.notna(), None).tolist()


@dataclass
class StageTimer:
    """Wall seconds per stage of the step, for the asset's metadata and the benchmark."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - started, 4)


def score_open_leads(
    model: LoadedModel, leads: pd.DataFrame, run: ScoringRun, timer: StageTimer | None = None
) -> ScoredLeads:
    """Score `leads` (rows of `open_leads_query`) in one matrix, with their top reasons."""
    timer = timer or StageTimer()
    with timer.stage("predict"):
        matrix = model.matrix(input_columns(leads))
        scores = model.predict_matrix(matrix)
    with timer.stage("explain"):
        sent = {name: _sent_values(leads[name]) for name in model.categories}
        lead_reasons = reasons(model, matrix, sent)
    with timer.stage("rows"):
        return scored_leads(
            run,
            contact_ids=leads["contact_id"].tolist(),
            emails=leads["email"].tolist(),
            scores=scores,
            reasons=lead_reasons,
            features_as_of=leads[FEATURES_AS_OF_COLUMN].tolist(),
        )


@dataclass(frozen=True)
class ScoringResult:
    scored: ScoredLeads
    snapshot: SnapshotInfo
    seconds: dict[str, float]


def score_and_publish(
    settings: PipelineSettings, warehouse: Warehouse, scoring_run_id: str
) -> ScoringResult:
    """Score every open lead with the published model, write `marts.lead_scores` and append to
    `marts.lead_score_history` (one transaction), then publish the snapshot the API reads.

    The warehouse is written first, so every score the API ever serves is in the history.
    Raises FileNotFoundError when no model is published.
    """
    timer = StageTimer()
    with timer.stage("load_model"):
        model = load_published_model(settings.published_model_path)
    with timer.stage("read_mart"):
        leads = warehouse.fetch_arrow(open_leads_query()).to_pandas()
    run = ScoringRun.of(model, high_threshold=settings.high_threshold)
    scored = score_open_leads(model, leads, run, timer)
    with timer.stage("write_tables"):
        write_score_tables(warehouse, scored, scoring_run_id)
    with timer.stage("write_snapshot"):
        snapshot = write_snapshot(settings.published_lead_scores_path, scored)
    return ScoringResult(scored, snapshot, timer.seconds)
