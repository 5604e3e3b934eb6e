"""Scores, labels, explanations and batches, checked against plain XGBoost on the same rows."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost as xgb
from model_factory import synthetic_columns

from leadscore_core.artifact import METADATA_ATTRIBUTE, load_model_bytes
from leadscore_core.features import FEATURES_BY_NAME
from leadscore_core.predictor import build_compiled_predictor

from .support import EXAMPLE_LEAD, ModelFiles, running_app, sample_leads, with_metadata

ISOTONIC = {"method": "isotonic", "x": [0.0, 0.05, 0.2, 1.0], "y": [0.0, 0.3, 0.6, 1.0]}
RATIOS = {
    "avg_engagement_seconds": ("total_engagement_seconds", "sessions"),
    "pages_per_session": ("page_views", "sessions"),
    "engaged_session_rate": ("engaged_sessions", "sessions"),
}


def _plain_feature(lead: dict[str, Any], name: str, channels: list[str]) -> float:
    """The feature derivations written out independently of leadscore_core."""

    def value(field: str) -> float:
        raw = lead.get(field)
        return math.nan if raw is None else float(raw)

    if name == "channel":
        known = lead["channel"] if lead["channel"] in channels else "Unassigned"
        return float(channels.index(known))
    if name in RATIOS:
        numerator, denominator = RATIOS[name]
        return value(numerator) / value(denominator) if value(denominator) > 0 else math.nan
    return value(name)


def plain_xgboost(model_file: Path, leads: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Scores and SHAP contributions from `xgboost.Booster(model_file=...)` alone."""
    booster = xgb.Booster(model_file=str(model_file))
    metadata = json.loads(booster.attr(METADATA_ATTRIBUTE))
    names = [f["name"] for f in metadata["features"]]
    channels = metadata["categories"].get("channel", [])
    matrix = np.array(
        [[_plain_feature(lead, name, channels) for name in names] for lead in leads],
        dtype=np.float32,
    )
    dmatrix = xgb.DMatrix(
        matrix,
        feature_names=names,
        feature_types=[f["xgboost_type"] for f in metadata["features"]],
        enable_categorical=True,
    )
    scores = booster.predict(dmatrix).astype(np.float64)
    calibration = metadata["calibration"]
    if calibration["method"] == "isotonic":
        scores = np.interp(scores, calibration["x"], calibration["y"])
    else:
        assert calibration["method"] == "none"
    return scores, booster.predict(dmatrix, pred_contribs=True)


@pytest.fixture(params=["full", "full-isotonic", "seed", "full-compiled", "seed-compiled"])
def served_model(
    request: pytest.FixtureRequest,
    model_files: ModelFiles,
    publish: Callable[[bytes], None],
    model_path: Path,
) -> Path:
    name = request.param.removesuffix("-compiled")
    raw = {
        "full": model_files.v1,
        "full-isotonic": with_metadata(model_files.v1, calibration=ISOTONIC),
        "seed": model_files.seed,
    }[name]
    if request.param.endswith("-compiled"):
        model = load_model_bytes(raw)
        columns, _ = synthetic_columns(2000, seed=3)
        assert build_compiled_predictor(raw, model.matrix(columns), model_path.parent)
    publish(raw)
    return model_path


def test_seed_example_round_trip(client) -> None:
    response = client.post("/score", json=EXAMPLE_LEAD)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"score", "label", "model_version"}
    assert 0.0 <= body["score"] <= 1.0
    assert body["label"] == ("high" if body["score"] > 0.8 else "low")
    assert body["model_version"] == "test/1"


def test_scores_equal_plain_xgboost(served_model: Path, settings_for) -> None:
    leads = sample_leads()
    expected, _ = plain_xgboost(served_model, leads)
    compiled = any(served_model.parent.glob("predictor-*.so"))
    with running_app(settings_for()) as client:
        assert client.get("/ready").json()["predictor"] == ("compiled" if compiled else "xgboost")
        single = [client.post("/score", json=lead).json()["score"] for lead in leads]
        batch = client.post("/score/batch", json={"leads": leads}).json()["results"]
    np.testing.assert_allclose(single, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose([r["score"] for r in batch], expected, rtol=0, atol=1e-6)


def test_isotonic_calibration_changes_the_served_score(
    model_files: ModelFiles, publish, settings_for
) -> None:
    """Guards the equality test above: calibration is really applied, not ignored."""
    publish(model_files.v1)
    with running_app(settings_for()) as client:
        raw_score = client.post("/score", json=EXAMPLE_LEAD).json()["score"]
    publish(with_metadata(model_files.v1, calibration=ISOTONIC))
    with running_app(settings_for()) as client:
        calibrated = client.post("/score", json=EXAMPLE_LEAD).json()["score"]
    assert calibrated == pytest.approx(np.interp(raw_score, ISOTONIC["x"], ISOTONIC["y"]), abs=1e-6)
    assert abs(calibrated - raw_score) > 0.01


def test_label_is_high_only_above_the_serving_threshold(
    model_files: ModelFiles, publish, settings_for
) -> None:
    publish(model_files.v1)
    with running_app(settings_for()) as client:
        score = client.post("/score", json=EXAMPLE_LEAD).json()["score"]
    for threshold, label in ((score - 1e-9, "high"), (score, "low")):
        with running_app(settings_for(high_threshold=threshold)) as client:
            assert client.post("/score", json=EXAMPLE_LEAD).json()["label"] == label


def test_unknown_channel_scores_like_the_fallback_channel(client) -> None:
    def score(channel: str) -> float:
        return client.post("/score", json={**EXAMPLE_LEAD, "channel": channel}).json()["score"]

    assert score("Carrier Pigeon") == score("Unassigned")
    assert score("Email") != score("Unassigned")  # the channel does matter to this model


def test_identifiers_are_echoed_only_when_sent(client) -> None:
    sent = {**EXAMPLE_LEAD, "email": "ada@example.com", "contact_id": "crm-42"}
    body = client.post("/score", json=sent).json()
    assert body["email"] == "ada@example.com" and body["contact_id"] == "crm-42"
    numeric_id = client.post("/score", json={**EXAMPLE_LEAD, "contact_id": 42}).json()
    assert numeric_id["contact_id"] == 42 and "email" not in numeric_id


@pytest.mark.parametrize("how", ["query", "body"])
def test_explain_gives_the_strongest_exact_shap_contributions(
    client, model_path: Path, how: str
) -> None:
    lead = {**EXAMPLE_LEAD, "channel": "Carrier Pigeon", "total_engagement_seconds": 300.0}
    if how == "query":
        response = client.post("/score", params={"explain": "true"}, json=lead)
    else:
        response = client.post("/score", json={**lead, "explain": True})
    assert response.status_code == 200, response.text
    reasons = response.json()["reasons"]

    _, contributions = plain_xgboost(model_path, [lead])
    names = [f["name"] for f in client.get("/model").json()["features"]]
    per_feature = dict(zip(names, contributions[0][:-1].tolist(), strict=True))
    strongest = sorted(per_feature, key=lambda name: -abs(per_feature[name]))[:3]
    assert [r["feature"] for r in reasons] == strongest
    for reason in reasons:
        assert reason["contribution"] == pytest.approx(per_feature[reason["feature"]], abs=1e-6)
        direction = "raises" if reason["contribution"] > 0 else "lowers"
        assert reason["text"].endswith(f"— {direction} the score")
    by_feature = {r["feature"]: r for r in reasons}
    if "channel" in by_feature:
        assert by_feature["channel"]["value"] == "Unassigned"
        assert "sent as 'Carrier Pigeon'" in by_feature["channel"]["text"]


@pytest.mark.parametrize("lead", sample_leads(12), ids=lambda lead: lead["channel"])
def test_reasons_read_as_sentences_built_from_the_feature_labels(client, lead) -> None:
    reasons = client.post("/score?explain=1", json=lead).json()["reasons"]
    assert reasons
    for reason in reasons:
        label = FEATURES_BY_NAME[reason["feature"]].label
        value = reason["value"]
        if value is None:
            words = "unknown"
        elif isinstance(value, bool):
            words = "yes" if value else "no"
        else:
            words = str(value)
        if reason["feature"] == "channel" and lead["channel"] != value:
            words += f" (sent as {lead['channel']!r})"
        direction = "raises" if reason["contribution"] > 0 else "lowers"
        expected = f"{label[0].upper()}{label[1:]}: {words} — {direction} the score"
        assert reason["text"] == expected


def test_no_reasons_unless_asked(client) -> None:
    assert "reasons" not in client.post("/score", json=EXAMPLE_LEAD).json()
    assert "reasons" not in client.post("/score?explain=false", json=EXAMPLE_LEAD).json()


def test_batch_keeps_request_order_and_matches_single_scores(client) -> None:
    leads = [{**lead, "contact_id": i} for i, lead in enumerate(sample_leads(40))]
    body = client.post("/score/batch", json={"leads": leads}).json()
    assert body["model_version"] == "test/1"
    assert [r["contact_id"] for r in body["results"]] == list(range(len(leads)))
    singles = [client.post("/score", json=lead).json()["score"] for lead in leads]
    assert [r["score"] for r in body["results"]] == pytest.approx(singles, abs=1e-12)


def test_batch_explain(client) -> None:
    leads = sample_leads(5)
    by_query = client.post("/score/batch?explain=true", json={"leads": leads}).json()["results"]
    by_body = client.post("/score/batch", json={"leads": leads, "explain": True}).json()["results"]
    assert by_query == by_body
    assert all(1 <= len(r["reasons"]) <= 3 for r in by_query)
    singles = [client.post("/score?explain=true", json=lead).json()["reasons"] for lead in leads]
    for batched, single in zip(by_query, singles, strict=True):
        assert [r["feature"] for r in batched["reasons"]] == [r["feature"] for r in single]


def test_batch_of_the_maximum_size_is_scored(client) -> None:
    leads = [{**EXAMPLE_LEAD, "page_views": i % 500} for i in range(10_000)]
    response = client.post("/score/batch", json={"leads": leads})
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 10_000
    assert results[7]["score"] == client.post("/score", json=leads[7]).json()["score"]


def test_batch_over_the_limit_is_rejected_naming_the_limit(client) -> None:
    leads = [EXAMPLE_LEAD] * 10_001
    response = client.post("/score/batch", json={"leads": leads})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["field"] == "leads"
    assert "at most 10000" in error["msg"]


def test_batch_limit_follows_settings(model_files: ModelFiles, publish, settings_for) -> None:
    publish(model_files.v1)
    with running_app(settings_for(max_batch=3)) as client:
        assert client.post("/score/batch", json={"leads": [EXAMPLE_LEAD] * 3}).status_code == 200
        response = client.post("/score/batch", json={"leads": [EXAMPLE_LEAD] * 4})
    assert response.status_code == 422
    assert "at most 3" in response.json()["detail"][0]["msg"]


def test_empty_batch_is_rejected(client) -> None:
    response = client.post("/score/batch", json={"leads": []})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "leads"
