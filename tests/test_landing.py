"""Landing files -> raw tables: all or nothing, with errors that name the file and the problem."""

from __future__ import annotations

import os
import time

import duckdb
import pandas as pd
import pytest

from leadscore_assets.generator import generate, write_landing
from leadscore_assets.landing import (
    LandingFileError,
    discover,
    files_digest,
    load_landing,
    quarantine,
    table_for,
    unrecognised,
)


@pytest.fixture
def landing_dir(tmp_path):
    directory = tmp_path / "landing"
    write_landing(generate(400, 5), directory)
    return directory


def _raw(warehouse, table):
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.execute(f"SELECT * FROM raw.{table} ORDER BY ALL").df()


def test_file_names_pick_tables_and_partial_uploads_are_ignored(tmp_path):
    assert table_for(tmp_path / "crm_deals_2026-11.csv") == "crm_deals"
    assert table_for(tmp_path / "ga4_sessions.parquet") == "ga4_sessions"
    assert table_for(tmp_path / "crm_contacts.csv.gz") == "crm_contacts"
    for partial in ("crm_deals.csv.part", "crm_deals.csv.tmp", ".crm_deals.csv", "crm_deals.csv~"):
        assert table_for(tmp_path / partial) is None
    assert table_for(tmp_path / "notes.csv") is None


def test_discover_lists_complete_files_and_reports_strangers(landing_dir):
    (landing_dir / "crm_deals_new.csv.part").write_text("deal_id\n1\n")
    (landing_dir / "README.txt").write_text("hello")
    assert sorted(f.path.name for f in discover(landing_dir)) == [
        "crm_contacts.csv",
        "crm_deals.csv",
        "ga4_sessions.csv",
    ]
    assert unrecognised(landing_dir) == ["README.txt"]


def test_digest_changes_when_a_file_changes(landing_dir):
    before = files_digest(discover(landing_dir))
    assert files_digest(discover(landing_dir)) == before
    path = landing_dir / "crm_deals.csv"
    path.write_text(path.read_text() + "999999999,1,open,1.0,\n")
    assert files_digest(discover(landing_dir)) != before


def test_loads_all_tables(landing_dir, tmp_path):
    counts = load_landing(tmp_path / "w.duckdb", discover(landing_dir))
    export = generate(400, 5)
    assert counts == {
        "ga4_sessions": export.sessions.num_rows,
        "crm_contacts": export.contacts.num_rows,
        "crm_deals": export.deals.num_rows,
    }
    contacts = _raw(tmp_path / "w.duckdb", "crm_contacts")
    assert str(contacts["created_at"].dtype).startswith("datetime64")
    assert set(contacts["_source_file"]) == {"crm_contacts.csv"}


def test_parquet_with_optional_columns_missing_and_newest_file_wins(landing_dir, tmp_path):
    deals = pd.read_csv(landing_dir / "crm_deals.csv")
    reexport = deals.head(3).drop(columns=["amount"]).assign(stage="closed_lost")
    later = time.time() + 10
    reexport.to_parquet(landing_dir / "crm_deals_reexport.parquet", index=False)
    os.utime(landing_dir / "crm_deals_reexport.parquet", (later, later))
    load_landing(tmp_path / "w.duckdb", discover(landing_dir))
    raw = _raw(tmp_path / "w.duckdb", "crm_deals").set_index("deal_id")
    assert len(raw) == len(deals)
    for deal_id in reexport["deal_id"]:
        assert raw.loc[deal_id, "stage"] == "closed_lost"
        assert raw.loc[deal_id, "_source_file"] == "crm_deals_reexport.parquet"
        assert pd.isna(raw.loc[deal_id, "amount"])


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("deal_id,contact_id,amount\n1,1,3.0\n", "missing required column(s) stage"),
        (
            "deal_id,contact_id,stage,closed_at\n1,1,closed_won,yesterday\n2,1,open,\n",
            "column closed_at: 1 value(s) not a valid TIMESTAMPTZ",
        ),
        ("deal_id,contact_id,stage\n1,1,maybe\n", "column stage: 1 value(s) not one of"),
        ("deal_id,contact_id,stage\n,1,open\n", "column deal_id: 1 value(s) empty"),
        ("deal_id,contact_id,stage\nx1,1,open\n", "column deal_id: 1 value(s) not a valid BIGINT"),
        ("deal_id,contact_id,stage\n", "has a header but no rows"),
    ],
)
def test_malformed_file_fails_naming_file_and_problem_and_changes_nothing(
    landing_dir, tmp_path, content, expected
):
    warehouse = tmp_path / "w.duckdb"
    load_landing(warehouse, discover(landing_dir))
    before = {t: _raw(warehouse, t) for t in ("ga4_sessions", "crm_contacts", "crm_deals")}

    bad = landing_dir / "crm_deals_broken.csv"
    bad.write_text(content)
    with pytest.raises(LandingFileError) as caught:
        load_landing(warehouse, discover(landing_dir))
    assert caught.value.path == bad
    assert str(caught.value).startswith("crm_deals_broken.csv: ")
    assert expected in caught.value.problem
    for table, frame in before.items():
        pd.testing.assert_frame_equal(_raw(warehouse, table), frame)


def test_quarantine_moves_the_file_with_a_reason(landing_dir):
    bad = landing_dir / "crm_contacts_bad.csv"
    bad.write_text("contact_id\n1\n")
    moved = quarantine(LandingFileError(bad, "missing required column(s) created_at"), landing_dir)
    assert not bad.exists()
    assert moved.parent == landing_dir / "quarantine"
    assert moved.read_text() == "contact_id\n1\n"
    reason = moved.with_name(moved.name + ".reason.txt").read_text()
    assert "crm_contacts_bad.csv" in reason and "created_at" in reason
    assert "crm_contacts_bad.csv" not in {f.path.name for f in discover(landing_dir)}
