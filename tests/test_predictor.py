"""The compiled predictor: built from the model by tl2cgen, equal to XGBoost within 1e-6 on every
row checked, tied to the model file's sha256, and replaced by XGBoost whenever anything is off."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from model_factory import synthetic_columns, train_model_file

from leadscore_core.artifact import (
    METADATA_ATTRIBUTE,
    apply_calibration,
    load_model_bytes,
    model_bytes,
    write_atomically,
)
from leadscore_core.features import feature_matrix, feature_row, feature_values
from leadscore_core.predictor import (
    TOLERANCE,
    build_compiled_predictor,
    compiled_predictor_path,
    disagreement,
)

ISOTONIC = {"method": "isotonic", "x": [0.0, 0.05, 0.2, 1.0], "y": [0.0, 0.3, 0.6, 1.0]}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("models")
    return {
        "full": train_model_file(folder / "full.json", n_estimators=100, seed=3).read_bytes(),
        "seed": train_model_file(folder / "seed.json", feature_set="seed").read_bytes(),
        "other": train_model_file(folder / "other.json", seed=8).read_bytes(),
    }


def _holdout(raw: bytes, n_rows: int = 20_000, seed: int = 21) -> np.ndarray:
    model = load_model_bytes(raw)
    columns, _ = synthetic_columns(n_rows, seed=seed)
    columns["sessions"][:500] = 0  # ratios missing
    columns["total_engagement_seconds"][500:1000] = np.nan
    return model.matrix(columns)


@pytest.mark.parametrize("name", ["full", "seed"])
def test_compiled_equals_xgboost_on_unseen_rows(models, tmp_path: Path, name: str) -> None:
    raw = models[name]
    path = build_compiled_predictor(raw, _holdout(raw), tmp_path)
    assert path == compiled_predictor_path(tmp_path, load_model_bytes(raw).file_sha256)
    xgboost = load_model_bytes(raw)
    compiled = load_model_bytes(raw, compiled_dir=tmp_path)
    assert (xgboost.predictor.kind, compiled.predictor.kind) == ("xgboost", "compiled")
    rows = _holdout(raw, n_rows=50_000, seed=99)
    difference = np.abs(compiled.predict_matrix(rows) - xgboost.predict_matrix(rows))
    assert difference.max() <= TOLERANCE
    for i in range(0, 2000, 37):  # the single-row path too
        row = rows[i].tolist()
        assert abs(compiled.predict_one(row) - xgboost.predict_one(row)) <= TOLERANCE
        assert compiled.predict_one(row) == compiled.predict_matrix(rows[i : i + 1])[0]


def test_the_single_row_path_gives_the_matrix_numbers(models) -> None:
    model = load_model_bytes(models["full"])
    columns, _ = synthetic_columns(300, seed=4)
    columns["sessions"][:20] = 0
    matrix = model.matrix(columns)
    for i in range(300):
        values = {name: column[i] for name, column in columns.items()}
        row = feature_row(values, model.features, model.categories)
        np.testing.assert_array_equal(row[0], matrix[i])
        as_floats = feature_values(values, model.features, model.categories)
        assert model.predict_one(as_floats) == model.predict_matrix(matrix[i : i + 1])[0]
    assert np.array_equal(
        feature_matrix(columns, model.features, model.categories), matrix, equal_nan=True
    )


def test_a_library_is_only_used_for_the_file_it_was_built_from(models, tmp_path: Path) -> None:
    build_compiled_predictor(models["full"], _holdout(models["full"]), tmp_path)
    assert load_model_bytes(models["other"], compiled_dir=tmp_path).predictor.kind == "xgboost"


def test_a_library_of_another_model_under_this_models_name_is_refused(
    models, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Same features, other trees: loading checks the predictions, not just the name."""
    built = build_compiled_predictor(models["other"], _holdout(models["other"]), tmp_path)
    sha = load_model_bytes(models["full"]).file_sha256
    shutil.copy(built, compiled_predictor_path(tmp_path, sha))
    with caplog.at_level(logging.WARNING):
        model = load_model_bytes(models["full"], compiled_dir=tmp_path)
    assert model.predictor.kind == "xgboost"
    assert "differ from XGBoost" in caplog.text


@pytest.mark.parametrize(
    "content", [b"", b"not a shared library", b"\x7fELF" + b"\x00" * 100], ids=repr
)
def test_an_unloadable_library_falls_back_to_xgboost(
    models, tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    sha = load_model_bytes(models["full"]).file_sha256
    write_atomically(compiled_predictor_path(tmp_path, sha), content)
    with caplog.at_level(logging.WARNING):
        model = load_model_bytes(models["full"], compiled_dir=tmp_path)
    assert model.predictor.kind == "xgboost"
    assert "not used, XGBoost predicts instead" in caplog.text


def test_a_feature_count_mismatch_is_refused(models, tmp_path: Path) -> None:
    built = build_compiled_predictor(models["seed"], _holdout(models["seed"]), tmp_path)
    sha = load_model_bytes(models["full"]).file_sha256
    shutil.copy(built, compiled_predictor_path(tmp_path, sha))
    assert load_model_bytes(models["full"], compiled_dir=tmp_path).predictor.kind == "xgboost"


def test_a_calibrated_model_is_compiled_and_checked_on_its_served_scores(
    models, tmp_path: Path
) -> None:
    booster = xgb.Booster(model_file=bytearray(models["full"]))
    metadata = json.loads(booster.attr(METADATA_ATTRIBUTE))
    raw = model_bytes(booster, {**metadata, "calibration": ISOTONIC})
    assert build_compiled_predictor(raw, _holdout(raw), tmp_path) is not None
    compiled = load_model_bytes(raw, compiled_dir=tmp_path)
    rows = _holdout(raw, seed=5)
    assert compiled.predictor.kind == "compiled"
    assert np.abs(
        compiled.predict_matrix(rows) - load_model_bytes(raw).predict_matrix(rows)
    ).max() <= (TOLERANCE)


def test_disagreement_counts_what_a_steep_calibration_makes_of_a_tiny_difference() -> None:
    compiled = np.array([0.5, 0.2], dtype=np.float32)
    reference = np.nextafter(compiled, np.float32(1))
    step = {"method": "isotonic", "x": [0.0, 0.5, float(reference[0]), 1.0], "y": [0, 0, 1, 1]}
    assert disagreement(compiled, reference) < 1e-7
    assert disagreement(compiled, reference, lambda p: apply_calibration(p, step)) == 1.0


def test_without_a_compiler_publishing_still_works(
    models, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert build_compiled_predictor(models["full"], _holdout(models["full"]), tmp_path) is None
    assert not list(tmp_path.glob("predictor-*"))


def test_a_new_library_replaces_those_of_earlier_models(models, tmp_path: Path) -> None:
    first = build_compiled_predictor(models["other"], _holdout(models["other"]), tmp_path)
    second = build_compiled_predictor(models["full"], _holdout(models["full"]), tmp_path)
    assert first is not None and second is not None
    assert list(tmp_path.glob("predictor-*")) == [second]


def test_publishing_a_disagreeing_build_writes_nothing(
    models, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("leadscore_core.predictor.TOLERANCE", -1.0)
    assert build_compiled_predictor(models["full"], _holdout(models["full"]), tmp_path) is None
    assert not list(tmp_path.glob("predictor-*"))
