"""Scoring the open leads (leadscore_assets/defs/scoring): a real model, the real API, a real
DuckDB file. The pipeline's own run of it is tested in test_lead_scores_pipeline.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from api.support import running_app, sample_leads
from model_factory import synthetic_columns, train_model_file

from leadscore_api.settings import ApiSettings
from leadscore_assets.defs.scoring.open_leads import (
    OPEN_OUTCOMES,
    load_published_model,
    open_leads_query,
    score_open_leads,
)
from leadscore_assets.defs.scoring.tables import (
    LEAD_SCORE_HISTORY_TABLE,
    LEAD_SCORES_TABLE,
    SCHEMA,
    write_score_tables,
)
from leadscore_core import explain
from leadscore_core.artifact import load_model
from leadscore_core.explain import TREE_BY_TREE_FROM_ROWS, feature_contributions
from leadscore_core.features import INPUT_FIELDS
from leadscore_core.lead_scores import COLUMNS, ScoredLeads, ScoringRun, scored_leads

LEADS = sample_leads(150)
FEATURES_AS_OF = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
REPO_ROOT = Path(__file__).resolve().parents[1]


def documented_history_query() -> str:
    """README.md's answer to "what did lead 1042 score on 1 December 2026, with which model"."""
    readme = (REPO_ROOT / "README.md").read_text()
    blocks = [block.split("```", 1)[0] for block in readme.split("```sql")[1:]]
    (query,) = [block for block in blocks if LEAD_SCORE_HISTORY_TABLE in block]
    return query


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("scoring") / "data"
    train_model_file(data / "models" / "lead_scoring_model.json", model_version="test/3")
    return data


@pytest.fixture(scope="module")
def model(data_dir: Path):
    return load_published_model(data_dir / "models" / "lead_scoring_model.json")


def mart_rows(leads: list[dict]) -> pd.DataFrame:
    """Open leads as `open_leads_query` returns them (missing values are NaN or None)."""
    return pd.DataFrame(
        {
            "contact_id": np.arange(1001, 1001 + len(leads), dtype=np.int64),
            "email": [None if i % 4 == 0 else f"lead{i}@example.com" for i in range(len(leads))],
            "features_as_of": pd.Series([FEATURES_AS_OF] * len(leads)),
            **{field.name: [lead.get(field.name) for lead in leads] for field in INPUT_FIELDS},
        }
    )


def as_dicts(scored: ScoredLeads) -> list[dict]:
    return [dict(zip(COLUMNS, row, strict=True)) for row in scored.rows]


def test_the_batch_scores_and_reasons_are_what_post_score_answers(data_dir, model) -> None:
    """Bit-identical scores and identical reasons, also for the awkward leads: unknown
    channels, no sessions, missing optional inputs."""
    scored = as_dicts(score_open_leads(model, mart_rows(LEADS), ScoringRun.of(model)))
    settings = ApiSettings(data_dir=data_dir, api_key=None, model_poll_seconds=0.05)
    with running_app(settings) as client:
        for lead, row in zip(LEADS, scored, strict=True):
            live = client.post("/score?explain=true", json=lead).json()
            assert row["score"] == live["score"]
            assert row["label"] == live["label"]
            assert json.loads(row["reasons"]) == live["reasons"]
            assert row["model_version"] == live["model_version"] == "test/3"
    assert {row["tier"] for row in scored} >= {"C", "D"}
    assert scored[0]["email"] is None and scored[1]["email"] == "lead1@example.com"
    assert {row["features_as_of"] for row in scored} == {FEATURES_AS_OF.isoformat()}


def test_the_query_reads_every_input_field_of_the_open_leads() -> None:
    query = open_leads_query()
    for field in INPUT_FIELDS:
        assert f" {field.name}," in query or f" {field.name} FROM" in query
    assert "outcome IN ('open', 'no_deal')" in query and OPEN_OUTCOMES == ("open", "no_deal")


def explained_matrix(model, rows: int) -> np.ndarray:
    """Leads as the mart holds them, with missing optional values, unknown channels and many
    repeated leads."""
    columns, _ = synthetic_columns(rows, seed=3)
    columns["total_engagement_seconds"][::7] = np.nan
    columns["channel"][::11] = "TikTok"  # scored as the fallback channel
    matrix = model.matrix(columns)
    return np.concatenate([matrix, matrix[: rows // 3]])


@pytest.mark.parametrize("rows", [TREE_BY_TREE_FROM_ROWS // 2, 5000])
def test_contributions_explained_tree_by_tree_are_exactly_xgboost_s(model, rows) -> None:
    matrix = explained_matrix(model, rows)
    assert np.array_equal(feature_contributions(model, matrix), model.contributions(matrix)[:, :-1])


def test_several_trees_per_round_are_explained_by_xgboost_directly(tmp_path) -> None:
    forest = load_model(
        train_model_file(tmp_path / "forest.json", n_estimators=5, num_parallel_tree=4)
    )
    assert forest.booster.num_boosted_rounds() == 5 and len(forest.tree_splits) == 20
    matrix = explained_matrix(forest, 2000)
    assert np.array_equal(
        feature_contributions(forest, matrix), forest.contributions(matrix)[:, :-1]
    )


def test_explanations_that_would_differ_from_xgboost_s_are_not_used(
    model, monkeypatch, caplog
) -> None:
    """The safety net: every tree-by-tree batch is checked on a sample of its rows."""
    matrix = explained_matrix(model, 3000)

    def every_row_alike(model, rows, splits):
        return np.array([0]), np.zeros(len(rows), dtype=np.int64)

    monkeypatch.setattr(explain, "_branching_patterns", every_row_alike)
    assert np.array_equal(feature_contributions(model, matrix), model.contributions(matrix)[:, :-1])
    assert "differ from XGBoost's" in caplog.text


def scoring_run(
    model, scored_at: datetime, scores: list[float], contact_ids: list[str] | None = None
) -> ScoredLeads:
    return scored_leads(
        ScoringRun.of(model, scored_at=scored_at),
        contact_ids=contact_ids or [f"c{i}" for i in range(len(scores))],
        emails=[None] * len(scores),
        scores=scores,
        reasons=[[]] * len(scores),
        features_as_of=[FEATURES_AS_OF] * len(scores),
    )


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_the_tables_hold_the_latest_run_and_every_run_s_history(warehouse, model) -> None:
    assert SCHEMA.names == list(COLUMNS)
    first = scoring_run(model, at("2026-11-30T06:00:00+00:00"), [0.1, 0.9, 0.5])
    assert write_score_tables(warehouse, first, "run-1") == {
        LEAD_SCORES_TABLE: 3,
        LEAD_SCORE_HISTORY_TABLE: 3,
    }
    second = scoring_run(model, at("2026-12-01T06:00:00+00:00"), [0.2, 0.95])
    write_score_tables(warehouse, second, "run-2")
    latest = warehouse.fetch_all(
        f"SELECT contact_id, score, tier FROM {LEAD_SCORES_TABLE} ORDER BY contact_id"
    )
    assert [tuple(row) for row in latest] == [("c0", 0.2, "D"), ("c1", 0.95, "A")]
    history = warehouse.fetch_all(
        f"SELECT scoring_run_id, count(*) FROM {LEAD_SCORE_HISTORY_TABLE} "
        "GROUP BY scoring_run_id ORDER BY 1"
    )
    assert [tuple(row) for row in history] == [("run-1", 3), ("run-2", 2)]
    (scored_at,) = warehouse.fetch_one(f"SELECT max(scored_at) FROM {LEAD_SCORES_TABLE}")
    assert scored_at == at("2026-12-01T06:00:00+00:00")


def test_the_documented_query_says_what_a_lead_scored_on_a_day(warehouse, model) -> None:
    """README's query, as written: lead 1042 on 1 December 2026 (times in UTC)."""
    runs = [
        ("2026-11-30T06:00:00+00:00", [0.31, 0.7], "test/3"),
        ("2026-12-01T06:00:00+00:00", [0.42, 0.7], "test/3"),
        ("2026-12-01T23:30:00+00:00", [0.87, 0.7], "test/3"),  # the last one that day
        ("2026-12-02T06:00:00+00:00", [0.12, 0.7], "test/3"),
    ]
    for number, (scored_at, scores, _) in enumerate(runs):
        scored = scoring_run(model, at(scored_at), scores, ["1042", "7"])
        write_score_tables(warehouse, scored, f"run-{number}")
    with warehouse.connect() as connection:
        if warehouse.kind == "duckdb":
            connection.execute("SET TimeZone = 'UTC'")  # PostgreSQL sessions are in UTC already
        score, tier, model_version, scored_at = connection.execute(
            documented_history_query()
        ).fetchone()
    assert (score, tier, model_version) == (0.87, "A", "test/3")
    assert scored_at == at("2026-12-01T23:30:00+00:00")


def test_a_failed_write_changes_neither_table(warehouse, model) -> None:
    write_score_tables(warehouse, scoring_run(model, FEATURES_AS_OF, [0.1, 0.9]), "run-1")
    # A history table that refuses the next rows (one of its columns was renamed), so the append
    # fails after the latest scores were already replaced in the same transaction.
    with warehouse.connect() as connection:
        connection.execute(
            f"ALTER TABLE {LEAD_SCORE_HISTORY_TABLE} RENAME COLUMN model_sha256 TO model_digest"
        )
    with pytest.raises((duckdb.Error, ValueError)):
        write_score_tables(warehouse, scoring_run(model, FEATURES_AS_OF, [0.3]), "run-2")
    assert tuple(warehouse.fetch_one(f"SELECT count(*) FROM {LEAD_SCORES_TABLE}")) == (2,)
    runs = warehouse.fetch_all(f"SELECT DISTINCT scoring_run_id FROM {LEAD_SCORE_HISTORY_TABLE}")
    assert [tuple(row) for row in runs] == [("run-1",)]
