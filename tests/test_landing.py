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
    deals = pd.read_csv(landing_dir / "crm_deals.csv", dtype={"deal_id": str, "contact_id": str})
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
            "column closed_at: 1 value(s) not a valid TIMESTAMPTZ, e.g. 'yesterday'",
        ),
        (
            "deal_id,contact_id,stage\n1,1,maybe\n2,1,closedwon\n3,1,maybe\n4,1,open\n",
            "column stage: 3 value(s) not one of closed_won, closed_lost, open, "
            "e.g. 'closedwon', 'maybe'",
        ),
        ("deal_id,contact_id,stage\n,1,open\n", "column deal_id: 1 value(s) empty"),
        (
            f"deal_id,contact_id,stage\n{'x' * 129},1,open\n",
            f"column deal_id: 1 value(s) longer than 128 characters, e.g. '{'x' * 57}...'",
        ),
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


def test_deals_of_unknown_contacts_reject_their_file_quoting_the_ids(landing_dir, warehouse):
    load_landing(warehouse, discover(landing_dir))
    before = _raw(warehouse, "crm_deals")
    bad = landing_dir / "crm_deals_later.csv"
    bad.write_text("deal_id,contact_id,stage\nd1,00Q5e0000NOTEXIST1,open\nd2,1042.0,open\n")
    with pytest.raises(LandingFileError) as caught:
        load_landing(warehouse, discover(landing_dir))
    assert caught.value.path == bad
    assert caught.value.problem.startswith(
        "column contact_id: 2 contact id(s) that no crm_contacts file has, "
        "e.g. '00Q5e0000NOTEXIST1', '1042'"
    )
    pd.testing.assert_frame_equal(_raw(warehouse, "crm_deals"), before)


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


# --- schema v2: text ids, contact attributes, unknown engagement --------------------------------

SALESFORCE_ID = "00Q5e00000AbCdEFGH"
UUID_ID = "3f2b8c1e-9a4d-4e7b-8c21-5d6f7a8b9c0d"
HEX_ID = "5f3a9c0b7e1d2a4c6b8e0f12"


def _write(path, text):
    path.write_text(text)
    return path


def _v2_landing(directory, contacts, deals, sessions=None):
    directory.mkdir()
    _write(
        directory / "ga4_sessions.csv",
        sessions
        or "user_pseudo_id,ga_session_id,ga_session_number,session_start,"
        "session_default_channel_group\n"
        "v1,1,1,2025-01-01T00:00:00Z,Direct\n",
    )
    _write(directory / "crm_contacts.csv", contacts)
    _write(directory / "crm_deals.csv", deals)
    return discover(directory)


def test_ids_of_every_kind_load_as_text(tmp_path, warehouse):
    contacts = (
        "contact_id,email,visitor_id,created_at\n"
        f"{SALESFORCE_ID},a@example.com,v1,2025-01-01T00:00:00Z\n"
        f"{UUID_ID},b@example.com,,2025-01-01T00:00:00Z\n"
        f" {HEX_ID} ,c@example.com,,2025-01-01T00:00:00Z\n"
        "1042.0,d@example.com,,2025-01-01T00:00:00Z\n"
        "007,e@example.com,,2025-01-01T00:00:00Z\n"
    )
    deals = (
        "deal_id,contact_id,stage\n"
        f"{UUID_ID},{SALESFORCE_ID},open\n"
        f"006AB0000012345XYZ,1042,closed_lost\n"
        "17,007,open\n"
    )
    load_landing(warehouse, _v2_landing(tmp_path / "landing", contacts, deals))
    raw = _raw(warehouse, "crm_contacts")
    # Trimmed, `1042.0` read as 1042, leading zeros kept: every id exactly as the CRM has it.
    assert sorted(raw["contact_id"]) == sorted(["007", "1042", HEX_ID, SALESFORCE_ID, UUID_ID])
    deals_raw = _raw(warehouse, "crm_deals").set_index("deal_id")
    assert deals_raw.loc[UUID_ID, "contact_id"] == SALESFORCE_ID
    assert deals_raw.loc["006AB0000012345XYZ", "contact_id"] == "1042"
    assert deals_raw.loc["17", "contact_id"] == "007"
    assert _raw(warehouse, "ga4_sessions")["ga_session_id"].tolist() == ["1"]


def test_parquet_integer_and_double_ids_load_as_the_same_text(tmp_path, warehouse):
    landing = tmp_path / "landing"
    _v2_landing(
        landing,
        "contact_id,email,visitor_id,created_at\n5,a@example.com,v1,2025-01-01T00:00:00Z\n",
        "deal_id,contact_id,stage\n1,5,open\n",
    )
    later = time.time() + 10
    pd.DataFrame(
        {"deal_id": [1.0], "contact_id": pd.array([5], dtype="int64"), "stage": ["closed_won"]}
    ).to_parquet(landing / "crm_deals_typed.parquet", index=False)
    os.utime(landing / "crm_deals_typed.parquet", (later, later))
    load_landing(warehouse, discover(landing))
    # The Parquet file's 1.0 and 5 are the ids "1" and "5": the same key as the CSV's, which the
    # newer file replaces.
    deals = _raw(warehouse, "crm_deals")
    assert deals[["deal_id", "contact_id", "stage"]].values.tolist() == [["1", "5", "closed_won"]]


def test_contact_attributes_load_when_present_and_are_empty_when_absent(tmp_path, warehouse):
    contacts = (
        "contact_id,email,visitor_id,created_at,lead_source,job_title,company_size,extra\n"
        "a,a@example.com,v1,2025-01-01T00:00:00Z,Webinar,CTO,250,x\n"
        "b,b@example.com,,2025-01-01T00:00:00Z,,,,y\n"
    )
    load_landing(
        warehouse,
        _v2_landing(tmp_path / "landing", contacts, "deal_id,contact_id,stage\n1,a,open\n"),
    )
    raw = _raw(warehouse, "crm_contacts").set_index("contact_id")
    assert raw.loc["a", "lead_source"] == "Webinar" and raw.loc["a", "company_size"] == 250
    assert pd.isna(raw.loc["b", "lead_source"]) and pd.isna(raw.loc["b", "company_size"])
    # Columns the export does not have at all are loaded as empty (unknown).
    assert raw["industry"].isna().all() and raw["country"].isna().all()
    assert "extra" not in raw.columns


def test_a_fractional_company_size_names_the_column(tmp_path, warehouse):
    contacts = (
        "contact_id,email,visitor_id,created_at,company_size\n"
        "a,a@example.com,v1,2025-01-01T00:00:00Z,12.5\n"
    )
    files = _v2_landing(tmp_path / "landing", contacts, "deal_id,contact_id,stage\n1,a,open\n")
    with pytest.raises(LandingFileError, match="column company_size: 1 value.s. not a whole"):
        load_landing(warehouse, files)


def test_sessions_without_engagement_or_page_views_load_them_as_unknown(tmp_path, warehouse):
    sessions = (
        "user_pseudo_id,ga_session_id,ga_session_number,session_start,"
        "session_default_channel_group,page_views\n"
        "v1,1,1,2025-01-01T00:00:00Z,Direct,\n"
        "v1,2,2,2025-01-02T00:00:00Z,Direct,4\n"
    )
    load_landing(
        warehouse,
        _v2_landing(
            tmp_path / "landing",
            "contact_id,email,visitor_id,created_at\na,,v1,2025-01-01T00:00:00Z\n",
            "deal_id,contact_id,stage\n1,a,open\n",
            sessions,
        ),
    )
    raw = _raw(warehouse, "ga4_sessions").set_index("ga_session_id")
    assert raw["engagement_time_seconds"].isna().all()
    assert pd.isna(raw.loc["1", "page_views"]) and raw.loc["2", "page_views"] == 4
