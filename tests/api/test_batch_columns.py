"""The columnar fast path of /score/batch never accepts what the pydantic model rejects, and the
leads it accepts are scored exactly as the model path scores them."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from leadscore_api.batch import LeadColumns, columnar_batch
from leadscore_api.schemas import batch_request_model
from leadscore_api.scoring import score_columns
from leadscore_core.artifact import load_model_bytes

from .support import EXAMPLE_LEAD, ModelFiles, sample_leads
from .test_validation import CASES

MAX_BATCH = 50
BATCH = batch_request_model(MAX_BATCH)

ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.sampled_from([0, 1, 3, 100, 3_650, 100_000, 100_001, 2**53, 2**53 + 1, 10**40]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 5.0, 5.5, 3650.0, 3650.5, -0.0, 1e300]),
    st.text(max_size=3),
    st.sampled_from(["Paid Search", "", "x" * 100, "x" * 101, "5", "true", "a" * 321]),
    st.lists(st.integers(), max_size=2),
)
KEYS = st.sampled_from(
    [
        "sessions",
        "engaged_sessions",
        "page_views",
        "channel",
        "is_first_visit",
        "total_engagement_seconds",
        "days_active_span",
        "distinct_channels",
        "email",
        "contact_id",
        "explain",
        "sesions",
    ]
)
LEADS = st.lists(
    st.builds(
        lambda base, changes, dropped: {
            **{k: v for k, v in base.items() if k not in dropped},
            **changes,
        },
        st.sampled_from(sample_leads(20)),
        st.dictionaries(KEYS, ANY_VALUE, max_size=3),
        st.sets(KEYS, max_size=2),
    ),
    min_size=0,
    max_size=4,
)


def _by_model(body: bytes, model: Any = BATCH) -> tuple[LeadColumns, bool] | None:
    try:
        batch = model.model_validate_json(body)
    except ValidationError:
        return None
    return LeadColumns.of(batch.leads), batch.explain


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(leads=LEADS, explain=st.one_of(st.booleans(), ANY_VALUE), with_explain=st.booleans())
def test_the_fast_path_accepts_only_what_the_model_accepts(leads, explain, with_explain) -> None:
    body = {"leads": leads, **({"explain": explain} if with_explain else {})}
    raw = json.dumps(body).encode()
    fast = columnar_batch(raw, MAX_BATCH)
    if fast is None:
        return  # the model path decides, as before
    slow = _by_model(raw)
    assert slow is not None, f"fast path accepted an invalid batch: {body}"
    assert fast[1] == slow[1]
    assert fast[0].emails == slow[0].emails and fast[0].contact_ids == slow[0].contact_ids
    for name, values in slow[0].inputs.items():
        assert np.array_equal(
            np.array(fast[0].inputs[name], dtype=object).astype(float)
            if name != "channel"
            else np.array(fast[0].inputs[name], dtype=object),
            np.array(values, dtype=object).astype(float)
            if name != "channel"
            else np.array(values, dtype=object),
            equal_nan=name != "channel",
        ), name


@pytest.mark.parametrize(("lead", "field"), CASES.values(), ids=CASES.keys())
def test_every_invalid_lead_goes_to_the_model_path(lead: dict[str, Any], field: str) -> None:
    body = json.dumps({"leads": [EXAMPLE_LEAD, lead]}).encode()
    assert columnar_batch(body, MAX_BATCH) is None


def test_realistic_batches_take_the_fast_path_and_score_as_the_model_path(
    model_files: ModelFiles,
) -> None:
    model = load_model_bytes(model_files.v1)
    leads = [
        {**lead, "contact_id": i, "email": f"lead{i}@example.com"}
        for i, lead in enumerate(sample_leads(200))
    ]
    leads[3]["contact_id"] = "crm-3"
    raw = json.dumps({"leads": leads, "explain": True}).encode()
    fast = columnar_batch(raw, 1000)
    assert fast is not None
    slow = _by_model(raw, batch_request_model(1000))
    assert slow is not None
    fast_results, fast_scores = score_columns(model, fast[0], 0.5, fast[1])
    slow_results, slow_scores = score_columns(model, slow[0], 0.5, slow[1])
    assert fast_results == slow_results
    np.testing.assert_array_equal(fast_scores, slow_scores)
