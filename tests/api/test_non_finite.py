"""A score is a finite probability or no answer: bad calibration values are rejected when the file
is loaded, and a non-finite score that still comes out of a model is a 500, never a 200."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadscore_api.serving import ServedModel
from leadscore_core.artifact import LoadedModel, ModelFileError, load_model_bytes

from .support import (
    EXAMPLE_LEAD,
    ModelFiles,
    metric_value,
    running_app,
    unvalidated_model,
    with_metadata,
)

NAN = math.nan
BAD_CALIBRATIONS: dict[str, dict[str, Any]] = {
    "isotonic x with NaN": {"method": "isotonic", "x": [0.0, NAN, 1.0], "y": [0.0, 0.5, 1.0]},
    "isotonic x with infinity": {
        "method": "isotonic",
        "x": [0.0, 0.5, math.inf],
        "y": [0.0, 0.5, 1.0],
    },
    "isotonic y with NaN": {"method": "isotonic", "x": [0.0, 0.5, 1.0], "y": [0.0, NAN, 1.0]},
    "isotonic x decreasing": {"method": "isotonic", "x": [0.0, 0.6, 0.5], "y": [0.0, 0.5, 1.0]},
    "isotonic y decreasing": {"method": "isotonic", "x": [0.0, 0.5, 1.0], "y": [0.0, 0.6, 0.5]},
    "isotonic x outside [0, 1]": {
        "method": "isotonic",
        "x": [-0.5, 0.5, 1.0],
        "y": [0.0, 0.5, 1.0],
    },
    "isotonic value a string": {"method": "isotonic", "x": [0.0, "0.5", 1.0], "y": [0, 0.5, 1]},
    "isotonic value a boolean": {"method": "isotonic", "x": [0.0, 0.5, 1.0], "y": [0, True, 1]},
    "platt a NaN": {"method": "platt", "a": NAN, "b": 0.0},
    "platt b infinite": {"method": "platt", "a": 1.0, "b": -math.inf},
}


def _nan_calibrated(raw: bytes) -> bytes:
    """The file of the incident: a NaN isotonic point above the probe row's raw score."""
    return unvalidated_model(
        raw,
        lambda metadata: metadata.update(
            calibration={"method": "isotonic", "x": [0.0, 0.0001, NAN, 1.0], "y": [0, 0.1, 0.5, 1]}
        ),
    )


@pytest.mark.parametrize("calibration", BAD_CALIBRATIONS.values(), ids=BAD_CALIBRATIONS.keys())
def test_a_calibration_with_a_bad_value_is_rejected_at_load(
    model_files: ModelFiles, calibration: dict[str, Any]
) -> None:
    raw = unvalidated_model(model_files.v1, lambda meta: meta.update(calibration=calibration))
    with pytest.raises(ModelFileError, match="calibration"):
        load_model_bytes(raw)


def test_the_reported_nan_calibration_is_rejected_even_though_its_probe_row_scores(
    model_files: ModelFiles,
) -> None:
    """The file of the incident: the probe row scores below the NaN point, so only checking every
    value catches it."""
    with pytest.raises(ModelFileError, match="finite"):
        load_model_bytes(_nan_calibrated(model_files.v1))


@pytest.fixture
def nan_model(model_files: ModelFiles) -> LoadedModel:
    """The NaN-calibrated model as if it had got past loading (defence in depth)."""
    model = load_model_bytes(with_metadata(model_files.v1, calibration=CALIBRATIONS[1]))
    object.__setattr__(
        model,
        "calibration",
        {"method": "isotonic", "x": [0.0, 0.0001, NAN, 1.0], "y": [0.0, 0.1, 0.5, 1.0]},
    )
    return model


def test_a_non_finite_score_is_a_500_and_is_not_recorded(
    model_files: ModelFiles, publish, settings_for, nan_model: LoadedModel
) -> None:
    publish(model_files.v1)
    with running_app(settings_for()) as client:
        holder = client.app.state.holder
        holder.current = ServedModel(nan_model, holder.current.loaded_at)
        hot = {**EXAMPLE_LEAD, "sessions": 40, "engaged_sessions": 40, "page_views": 400}
        for request in (
            lambda: client.post("/score", json=hot),
            lambda: client.post("/score?explain=true", json=hot),
            lambda: client.post("/score/batch", json={"leads": [EXAMPLE_LEAD, hot]}),
        ):
            response = request()
            assert response.status_code == 500, response.text
            assert "non-finite score" in response.json()["detail"]
            assert "NaN" not in response.text.replace("non-finite", "")
        assert metric_value(client, "leadscore_score_count", model_version="test/1") == 0
        assert math.isfinite(metric_value(client, "leadscore_score_sum", model_version="test/1"))


LEADS = st.fixed_dictionaries(
    {
        "sessions": st.integers(0, 100_000),
        "page_views": st.integers(0, 10_000_000),
        "channel": st.sampled_from(["Paid Search", "Email", "Direct", "TikTok", "Unassigned"]),
        "is_first_visit": st.booleans(),
    },
    optional={
        "total_engagement_seconds": st.floats(0, 31_536_000),
        "days_active_span": st.floats(0, 3_650),
        "distinct_channels": st.integers(0, 100),
    },
).flatmap(
    lambda lead: st.integers(0, lead["sessions"]).map(
        lambda engaged: {**lead, "engaged_sessions": engaged}
    )
)
CALIBRATIONS = [
    {"method": "none"},
    {"method": "isotonic", "x": [0.0, 0.05, 0.2, 1.0], "y": [0.0, 0.3, 0.6, 1.0]},
    {"method": "platt", "a": 1.3, "b": -0.4},
]


@pytest.mark.parametrize("calibration", CALIBRATIONS, ids=lambda c: c["method"])
def test_a_valid_model_scores_every_valid_lead_finitely(
    model_files: ModelFiles, publish, settings_for, calibration: dict[str, Any]
) -> None:
    publish(with_metadata(model_files.v1, calibration=calibration))
    with running_app(settings_for()) as client:

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
        @given(leads=st.lists(LEADS, min_size=1, max_size=20))
        def check(leads: list[dict[str, Any]]) -> None:
            single = client.post("/score", json=leads[0])
            batch = client.post("/score/batch", json={"leads": leads})
            assert single.status_code == 200 and batch.status_code == 200, single.text
            scores = [single.json()["score"], *(r["score"] for r in batch.json()["results"])]
            assert all(0.0 <= s <= 1.0 for s in scores)

        check()
        count = metric_value(client, "leadscore_score_count", model_version="test/1")
        assert count > 0
        assert math.isfinite(metric_value(client, "leadscore_score_sum", model_version="test/1"))
