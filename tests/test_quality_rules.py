"""The landing quality report's rules on their own: thresholds, words, examples (the figures on
real exports are tested in tests/test_landing_v2.py)."""

from __future__ import annotations

import dagster as dg
import pytest

from leadscore_assets.defs.warehouse.quality import (
    RULES,
    check_result,
    report,
    rows_per_file,
    unmatched_hint,
    verdict,
)
from leadscore_assets.settings import PipelineSettings

RULES_BY_CHECK = {rule.check: rule for rule in RULES}
FIGURES = {
    "contacts": 1_000,
    "contacts_without_visitor_id": 40,
    "contacts_with_sessions": 5,
    "sessions": 20_000,
    "sessions_with_contact": 9,
    "sessions_unassigned": 2_000,
    "linked_sessions": 9,
    "sessions_after_features_as_of": 0,
    "contact_match_rate": 0.005,
    "session_match_rate": 9 / 20_000,
    "unassigned_share": 0.1,
    "point_in_time_dropped_share": 0.0,
}


@pytest.mark.parametrize(
    ("value", "low_is_bad", "expected"),
    [
        (0.5, True, "ok"),
        (0.2, True, "warn"),
        (0.005, True, "error"),
        (0.3, True, "ok"),  # at the threshold is not below it
        (0.1, False, "ok"),
        (0.6, False, "warn"),
        (0.99, False, "error"),
        (None, True, "ok"),  # nothing to measure (no linked sessions)
    ],
)
def test_verdict_against_warn_and_error_thresholds(value, low_is_bad, expected):
    warn, error = (0.3, 0.01) if low_is_bad else (0.5, 0.95)
    assert verdict(value, warn, error, low_is_bad) == expected


def test_every_rule_reads_its_two_settings(tmp_path):
    settings = PipelineSettings(
        data_dir=tmp_path,
        quality_max_unassigned_share_warn=0.4,
        quality_max_unassigned_share_error=0.8,
    )
    assert RULES_BY_CHECK["unassigned_channel_share"].thresholds(settings) == (0.4, 0.8)
    assert RULES_BY_CHECK["unassigned_channel_share"].env("error") == (
        "LEADSCORE_QUALITY_MAX_UNASSIGNED_SHARE_ERROR"
    )
    for rule in RULES:
        warn, error = rule.thresholds(PipelineSettings(data_dir=tmp_path))
        assert (error <= warn) if rule.low_is_bad else (error >= warn), rule.check


def test_a_near_zero_match_is_an_error_naming_the_setting_and_examples(tmp_path):
    examples = {
        "crm_contacts.visitor_id": ["GA1.2.111.222", "GA1.2.333.444"],
        "ga4_sessions.user_pseudo_id": ["111.222", "555.666"],
    }
    result = check_result(
        RULES_BY_CHECK["contact_match_rate"], FIGURES, PipelineSettings(data_dir=tmp_path), examples
    )
    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.ERROR
    assert result.description == (
        "5 of 1,000 (0.5%) contacts have a session of their visitor id (40 have no visitor id): "
        "below the error threshold 1.0% (LEADSCORE_QUALITY_MIN_CONTACT_MATCH_RATE_ERROR). "
        "Ids that match nothing, e.g. crm_contacts.visitor_id: 'GA1.2.111.222', "
        "'GA1.2.333.444'; ga4_sessions.user_pseudo_id: '111.222', '555.666'. The contacts hold "
        "GA cookie values ('GA1.2.111.222') where GA4 exports the bare client id ('111.222'): "
        "cut the 'GA1.x.' prefix off visitor_id."
    )


def test_a_low_session_match_warns_without_failing_the_run(tmp_path):
    result = check_result(
        RULES_BY_CHECK["session_match_rate"], FIGURES, PipelineSettings(data_dir=tmp_path), {}
    )
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.description.startswith("9 of 20,000 (0.0%) sessions belong to a contact's")


def test_a_figure_within_its_thresholds_passes(tmp_path):
    result = check_result(
        RULES_BY_CHECK["unassigned_channel_share"], FIGURES, PipelineSettings(data_dir=tmp_path), {}
    )
    assert result.passed
    assert result.description == "2,000 of 20,000 (10.0%) sessions count as channel 'Unassigned'"


def test_contacts_without_any_visitor_id_get_their_own_hint():
    hint = unmatched_hint({"ga4_sessions.user_pseudo_id": ["111.222"]})
    assert hint.endswith("No contact has a visitor id: export the GA client id the form captured.")


def test_rows_per_file_shows_files_a_newer_export_replaced_entirely():
    loaded = [
        {"landing_table": "crm_deals", "file_name": "crm_deals_new.csv", "rows_loaded": 7},
        {"landing_table": "crm_contacts", "file_name": "crm_contacts.csv", "rows_loaded": 3},
    ]
    files = {
        "crm_deals": ["crm_deals_old.csv", "crm_deals_new.csv"],
        "crm_contacts": ["crm_contacts.csv"],
    }
    assert rows_per_file(loaded, files) == {
        "crm_deals": {"crm_deals_old.csv": 0, "crm_deals_new.csv": 7},
        "crm_contacts": {"crm_contacts.csv": 3},
    }


def test_the_report_table_says_never_for_a_threshold_no_share_can_cross():
    """The session match rate's default error threshold is 0: no rate is below it."""
    lines = report(FIGURES, PipelineSettings()).splitlines()
    (session_line,) = [line for line in lines if "session_match_rate" in line]
    assert session_line.endswith("| < 0.1% | never |")
    (unassigned_line,) = [line for line in lines if "unassigned_channel_share" in line]
    assert unassigned_line.endswith("| > 25.0% | > 95.0% |")
