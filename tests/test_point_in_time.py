"""No leakage: the mart counts only sessions before each lead's outcome.

The generator knows every lead's pre-outcome activity (its truth table) and also writes sessions
after deals closed (customers keep visiting). The mart must reproduce the pre-outcome numbers
exactly, although the raw table holds more sessions for those leads.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from leadscore_assets.defs.warehouse.assets import MART_TABLE
from leadscore_assets.demo.generator import generate
from leadscore_core.features import INPUT_FIELDS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mart_and_truth(trained_pipeline):
    settings = trained_pipeline.settings
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        mart = conn.execute(
            f"SELECT * FROM {MART_TABLE} ORDER BY length(contact_id), contact_id"
        ).df()
        all_sessions = conn.execute(
            "SELECT c.contact_id, count(*) AS all_sessions FROM raw.crm_contacts c "
            "JOIN raw.ga4_sessions s ON s.user_pseudo_id = c.visitor_id GROUP BY 1 ORDER BY 1"
        ).df()
    truth = generate(settings.synthetic_leads, settings.synthetic_seed).truth.to_pandas()
    # Ids are text in the warehouse; the generator wrote them from these integers.
    truth["contact_id"] = truth["contact_id"].astype(str)
    return (
        mart.set_index("contact_id"),
        truth.set_index("contact_id"),
        all_sessions.set_index("contact_id"),
    )


def test_raw_data_really_contains_post_outcome_activity(mart_and_truth):
    mart, truth, all_sessions = mart_and_truth
    extra = all_sessions["all_sessions"] - mart["sessions"]
    assert (extra > 0).sum() > 0.05 * len(mart), "the leakage bait is missing from the raw data"
    assert (extra[truth["is_won"]] > 0).mean() > 0.5


def test_mart_features_equal_the_pre_outcome_truth(mart_and_truth):
    mart, truth, _ = mart_and_truth
    assert mart.index.equals(truth.index)
    for field in INPUT_FIELDS:
        if field.from_contacts:  # the demo exports have no contact attributes: all unknown
            assert mart[field.name].isna().all(), field.name
            continue
        expected, actual = truth[field.name], mart[field.name]
        if field.kind in ("seconds", "days"):
            np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-6, err_msg=field.name)
        else:
            pd.testing.assert_series_equal(
                actual.astype(expected.dtype), expected, check_names=False, obj=field.name
            )
    assert (mart["is_won"] == truth["is_won"].astype(int)).all()


def test_features_stop_at_the_outcome(mart_and_truth, trained_pipeline):
    settings = trained_pipeline.settings
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        late = conn.execute(
            f"""
            SELECT count(*) FROM {MART_TABLE} m
            JOIN raw.crm_contacts c USING (contact_id)
            JOIN raw.ga4_sessions s ON s.user_pseudo_id = c.visitor_id
            WHERE m.outcome = 'won' AND s.session_start >= m.outcome_at
            """
        ).fetchone()[0]
        counted_late = conn.execute(
            f"SELECT count(*) FROM {MART_TABLE} "
            "WHERE outcome = 'won' AND features_as_of <> outcome_at"
        ).fetchone()[0]
    assert late > 0
    assert counted_late == 0
