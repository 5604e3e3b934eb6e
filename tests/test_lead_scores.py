"""The lead scores snapshot file: validation, labels and tiers, atomic publishing, safe reading."""

from __future__ import annotations

import math
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from leadscore_core.lead_scores import (
    COLUMNS,
    ScoredLeads,
    ScoringRun,
    SnapshotFileError,
    open_snapshot,
    scored_leads,
    write_snapshot,
)
from leadscore_core.tiers import SALES_TIERS, sales_tiers, score_labels, tier_letters

RUN = ScoringRun("lead_scoring/7", "ab" * 32, datetime(2026, 12, 1, 6, 0, tzinfo=UTC))
REASON = {"feature": "channel", "value": "Email", "contribution": 0.5, "text": "Channel: Email"}


def columns(count: int = 4, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "contact_ids": [f"c-{i}" for i in range(count)],
        "emails": [f"lead{i}@example.com" for i in range(count)],
        "scores": np.linspace(0.1, 0.9, count),
        "reasons": [[REASON]] * count,
        "features_as_of": [datetime(2026, 11, 30, tzinfo=UTC)] * count,
    }
    return {**values, **overrides}


def test_labels_and_tiers_follow_the_strict_threshold_rule() -> None:
    scores = [0.0, 0.2, 0.2001, 0.5, 0.50001, 0.8, 0.8000001, 1.0]
    assert score_labels(scores, 0.8) == ["low"] * 6 + ["high"] * 2
    assert tier_letters(scores) == ["D", "D", "C", "C", "B", "B", "A", "A"]
    assert [tier.letter for tier in SALES_TIERS] == ["A", "B", "C", "D"]
    assert tier_letters([0.85, 0.95], sales_tiers(0.9)) == ["B", "A"]


def test_tier_letters_agree_with_the_tier_bounds() -> None:
    scores = np.random.default_rng(3).random(2000)
    by_letter = {tier.letter: tier for tier in SALES_TIERS}
    for score, letter in zip(scores, tier_letters(scores), strict=True):
        tier = by_letter[letter]
        assert tier.lower < score <= tier.upper or (tier.lower == 0.0 and score == 0.0)


def test_rows_carry_derived_label_tier_and_the_run() -> None:
    scored = scored_leads(RUN, **columns(scores=[0.1, 0.55, 0.8, 0.95]))
    assert [(row[3], row[4]) for row in scored.rows] == [
        ("low", "D"),
        ("low", "B"),
        ("low", "B"),
        ("high", "A"),
    ]
    first = dict(zip(COLUMNS, scored.rows[0], strict=True))
    assert first["model_version"] == "lead_scoring/7" and first["model_sha256"] == "ab" * 32
    assert first["scored_at"] == "2026-12-01T06:00:00+00:00"
    assert first["features_as_of"] == "2026-11-30T00:00:00+00:00"


def test_ids_are_text_and_missing_values_are_null() -> None:
    scored = scored_leads(
        RUN,
        **columns(
            3,
            contact_ids=[42, np.int64(7), "0035e000001AbCd"],
            emails=[None, math.nan, "x@example.com"],
            features_as_of=[None, datetime(2026, 11, 30, 12, 0), "2026-11-29T00:00:00+00:00"],
        ),
    )
    assert [row[0] for row in scored.rows] == ["42", "7", "0035e000001AbCd"]
    assert [row[1] for row in scored.rows] == [None, None, "x@example.com"]
    # A naive timestamp is taken as UTC, as DuckDB's TIMESTAMP is.
    assert [row[9] for row in scored.rows] == [
        None,
        "2026-11-30T12:00:00+00:00",
        "2026-11-29T00:00:00+00:00",
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"scores": [0.1, math.nan, 0.3, 0.4]}, "the first is nan for contact 'c-1'"),
        ({"scores": [0.1, 0.2, 1.5, 0.4]}, "the first is 1.5 for contact 'c-2'"),
        ({"scores": [-0.1, 0.2, 0.3, math.inf]}, "2 score(s) are not probabilities"),
        ({"contact_ids": ["a", "b", "a", "c"]}, "contact id 'a' appears more than once"),
        ({"contact_ids": ["a", "b", 3.0, "c"]}, "contact id at row 2 must be text or"),
        ({"contact_ids": ["a", " ", "b", "c"]}, "contact id at row 1 must be 1 to 128"),
        ({"contact_ids": ["a", "b", "c", "x" * 129]}, "contact id at row 3 must be 1 to 128"),
        ({"contact_ids": ["a", "b", "c", -1]}, "non-negative integer, got -1"),
        ({"emails": ["a@x", 5, "c@x", "d@x"]}, "email at row 1 must be text or missing"),
        ({"features_as_of": [1, None, None, None]}, "features_as_of at row 0"),
        ({"reasons": [[REASON]] * 3}, "4 contact ids but column lengths"),
    ],
)
def test_bad_input_is_refused_naming_the_lead(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        scored_leads(RUN, **columns(**overrides))
    assert message in str(raised.value)


def test_a_snapshot_reads_back_what_was_written(tmp_path: Path) -> None:
    path = tmp_path / "models" / "lead_scores.sqlite"
    written = write_snapshot(path, scored_leads(RUN, **columns()))
    snapshot = open_snapshot(path)
    assert snapshot.info == written and len(snapshot) == 4
    assert written.row_count == 4 and written.model_version == "lead_scoring/7"
    lead = snapshot.by_contact_id("c-2")
    assert lead is not None
    assert (lead.email, lead.reasons, lead.label) == ("lead2@example.com", [REASON], "low")
    assert lead.score == pytest.approx(0.1 + 2 * 0.8 / 3, abs=1e-15)
    assert snapshot.by_contact_id("c-9") is None
    assert [lead.contact_id for lead in snapshot.by_email("LEAD3@Example.COM")] == ["c-3"]
    assert [lead.contact_id for lead in snapshot] == ["c-0", "c-1", "c-2", "c-3"]
    assert path.stat().st_mode & 0o777 == 0o644
    assert list(tmp_path.joinpath("models").iterdir()) == [path]  # no temporary file left


def test_an_empty_run_is_a_valid_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "lead_scores.sqlite"
    write_snapshot(path, scored_leads(RUN, **columns(0, scores=[])))
    snapshot = open_snapshot(path)
    assert len(snapshot) == 0 and snapshot.by_contact_id("c-0") is None


def test_a_failed_write_leaves_the_published_snapshot_untouched(tmp_path: Path) -> None:
    path = tmp_path / "lead_scores.sqlite"
    write_snapshot(path, scored_leads(RUN, **columns()))
    before = path.read_bytes()
    # Rows that bypassed `scored_leads`: the file's own constraints still refuse a NaN score.
    bad_row = list(scored_leads(RUN, **columns(1)).rows[0])
    bad_row[2] = math.nan
    with pytest.raises(sqlite3.IntegrityError):
        write_snapshot(path, ScoredLeads(RUN, [tuple(bad_row)]))
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


def test_an_open_snapshot_keeps_its_version_when_a_new_one_is_published(tmp_path: Path) -> None:
    path = tmp_path / "lead_scores.sqlite"
    write_snapshot(path, scored_leads(RUN, **columns()))
    old = open_snapshot(path)
    newer_run = ScoringRun("lead_scoring/8", "cd" * 32, datetime(2026, 12, 2, tzinfo=UTC))
    write_snapshot(path, scored_leads(newer_run, **columns(2)))
    assert old.by_contact_id("c-3") is not None  # still reading the file it opened
    assert old.info.model_version == "lead_scoring/7"
    new = open_snapshot(path)
    assert new.by_contact_id("c-3") is None and new.info.model_version == "lead_scoring/8"
    assert new.info.snapshot_id != old.info.snapshot_id


def _sqlite(path: Path, script: str) -> Path:
    with closing(sqlite3.connect(path)) as connection:
        connection.executescript(script)
    return path


def _tampered(tmp_path: Path, sql: str) -> Path:
    path = tmp_path / "lead_scores.sqlite"
    write_snapshot(path, scored_leads(RUN, **columns()))
    return _sqlite(path, sql)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d.joinpath("x").write_bytes(b"no database") and d / "x", "not a readable"),
        (lambda d: _sqlite(d / "x", "CREATE TABLE t (a)"), "no table 'lead_scores'"),
        (lambda d: _tampered(d, "UPDATE snapshot SET schema_version = 9"), "schema_version 9"),
        (lambda d: _tampered(d, "DELETE FROM lead_scores WHERE contact_id = 'c-1'"), "holds 3"),
        (lambda d: _tampered(d, "DELETE FROM snapshot"), "must hold one row, holds 0"),
        (
            lambda d: _tampered(d, "ALTER TABLE lead_scores DROP COLUMN features_as_of"),
            "table lead_scores has columns",
        ),
    ],
    ids=["not sqlite", "other database", "newer schema", "rows missing", "no record", "columns"],
)
def test_a_file_that_is_not_a_valid_snapshot_is_refused_saying_why(
    tmp_path: Path, make, message: str
) -> None:
    with pytest.raises(SnapshotFileError, match=message):
        open_snapshot(make(tmp_path))


def test_a_missing_snapshot_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_snapshot(tmp_path / "lead_scores.sqlite")
