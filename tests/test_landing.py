"""Landing files -> raw tables: all or nothing, with errors that name the file and the problem."""

from __future__ import annotations

import os
import time

import pandas as pd
import pytest

from leadscore_assets.defs.ingestion.folder import (
    LandingFileError,
    discover,
    files_digest,
    quarantine,
    table_for,
    unrecognised,
)
from leadscore_assets.defs.ingestion.loader import load_landing
from leadscore_assets.defs.ingestion.schema import PRIMARY_KEYS
from leadscore_assets.demo.files import write_landing
from leadscore_assets.demo.generator import generate


@pytest.fixture
def landing_dir(tmp_path):
    directory = tmp_path / "landing"
    write_landing(generate(400, 5), directory)
    return directory


def _raw(warehouse, table):
    keys = ", ".join(PRIMARY_KEYS[table])
    return warehouse.fetch_arrow(f"SELECT * FROM raw.{table} ORDER BY {keys}").to_pandas()


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


def test_loads_all_tables(landing_dir, warehouse):
    counts = load_landing(warehouse, discover(landing_dir)).rows
    export = generate(400, 5)
    assert counts == {
        "ga4_sessions": export.sessions.num_rows,
        "crm_contacts": export.contacts.num_rows,
        "crm_deals": export.deals.num_rows,
    }
    contacts = _raw(warehouse, "crm_contacts")
    assert str(contacts["created_at"].dtype).startswith("datetime64")
    assert set(contacts["_source_file"]) == {"crm_contacts.csv"}


def test_parquet_with_optional_columns_missing_and_newest_file_wins(landing_dir, warehouse):
    deals = pd.read_csv(landing_dir / "crm_deals.csv")
    reexport = deals.head(3).drop(columns=["amount"]).assign(stage="closed_lost")
    later = time.time() + 10
    reexport.to_parquet(landing_dir / "crm_deals_reexport.parquet", index=False)
    os.utime(landing_dir / "crm_deals_reexport.parquet", (later, later))
    load_landing(warehouse, discover(landing_dir))
    raw = _raw(warehouse, "crm_deals").set_index("deal_id")
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
    landing_dir, warehouse, content, expected
):
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


def _rejected(landing_dir, warehouse, name, write):
    """Load once (good data), add a bad file, and return the LandingFileError it raises, after
    checking that the raw tables did not change."""
    load_landing(warehouse, discover(landing_dir))
    before = {t: _raw(warehouse, t) for t in ("ga4_sessions", "crm_contacts", "crm_deals")}
    bad = landing_dir / name
    write(bad)
    with pytest.raises(LandingFileError) as caught:
        load_landing(warehouse, discover(landing_dir))
    assert caught.value.path == bad
    for table, frame in before.items():
        pd.testing.assert_frame_equal(_raw(warehouse, table), frame)
    return caught.value


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "is empty (0 bytes)"),
        (
            "deal_id,contact_id,stage\n1,1,open\n2,1",
            "line 3 has 2 field(s) but the header has 3",
        ),
        (
            "deal_id,contact_id,stage,amount\n1,1,open,2.0\n2,1,closed_won,5.0,7\n",
            "line 3 has 5 field(s) but the header has 4",
        ),
        ("deal_id,contact_id,stage\n1.5,1,open\n", "column deal_id: 1 value(s) not a whole number"),
    ],
)
def test_empty_truncated_and_fractional_csv_files_get_a_precise_reason(
    landing_dir, warehouse, content, expected
):
    error = _rejected(landing_dir, warehouse, "crm_deals_bad.csv", lambda p: p.write_text(content))
    assert expected in error.problem
    assert "missing required column" not in error.problem


def test_a_fractional_id_in_parquet_is_rejected_not_rounded(landing_dir, warehouse):
    deals = pd.DataFrame(
        {"deal_id": [7.0, 8.5], "contact_id": [1, 1], "stage": ["open", "closed_won"]}
    )
    error = _rejected(
        landing_dir,
        warehouse,
        "crm_deals_floats.parquet",
        lambda p: deals.to_parquet(p, index=False),
    )
    assert "column deal_id: 1 value(s) not a whole number" in error.problem


def test_conflicting_rows_for_one_key_in_one_file_reject_the_file(landing_dir, warehouse):
    content = "deal_id,contact_id,stage\n5,1,open\n5,1,closed_won\n6,1,open\n6,2,open\n7,1,open\n"
    error = _rejected(
        landing_dir, warehouse, "crm_deals_dupes.csv", lambda p: p.write_text(content)
    )
    assert "2 key(s) appear more than once with different values" in error.problem
    assert "deal_id=5" in error.problem and "deal_id=6" in error.problem


def test_exact_duplicate_rows_in_one_file_are_loaded_once_and_counted(landing_dir, warehouse):
    deals = landing_dir / "crm_deals.csv"
    header, first, *_ = deals.read_text().splitlines()
    deals.write_text(deals.read_text() + f"{first}\n{first}\n")
    loaded = load_landing(warehouse, discover(landing_dir))
    raw = _raw(warehouse, "crm_deals")
    assert raw["deal_id"].is_unique
    assert loaded.duplicate_rows == {"crm_deals.csv": 2}
