"""The published model file: XGBoost native JSON with leadscore's metadata embedded.

One file (not a model plus a sidecar) so that one atomic rename publishes both, and a reader can
never pair a new booster with old metadata. Plain `xgboost.Booster(model_file=...)` loads it; the
metadata sits in the booster attribute `leadscore_metadata`. Loading validates everything the
scoring service relies on, so a bad file is rejected before it can serve a single request.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import os
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from leadscore_core.features import (
    FALLBACK_CHANNEL,
    INPUT_FIELDS,
    Feature,
    feature_matrix,
    features_for,
    xgboost_feature_type,
)

METADATA_ATTRIBUTE = "leadscore_metadata"
METADATA_SCHEMA_VERSION = 1
CALIBRATION_METHODS = ("none", "isotonic", "platt")


class ModelFileError(ValueError):
    """The file is not a model this code can serve; the message says why."""


class NonFiniteScoreError(RuntimeError):
    """A loaded model produced a score that is not a probability: a bug, never served."""


# Scoring without `Booster.inplace_predict`'s wrapper. It builds a new proxy DMatrix per call,
# and creating one makes XGBoost re-read the cgroup CPU quota files (about ten syscalls); with the
# rest of its Python wrapper that is ~0.15 ms per call, more than the prediction of a small batch.
# Calling the same C entry point (with the same configuration) through a proxy reused per thread
# gives identical predictions. What remains is XGBoost's own per-call setup (~45 us for one row
# of the 100-tree model, most of it compiling the `device` regexes and walking every tree for
# its depth; see BENCHMARKS.md). Relies on xgboost internals, hence the pinned minor version.
_PREDICT_VALUES_CONFIG = json.dumps(
    {
        "type": 0,
        "training": False,
        "iteration_begin": 0,
        "iteration_end": 0,
        "missing": math.nan,
        "strict_shape": False,
        "cache_id": 0,
    }
).encode()


class _PredictState(threading.local):
    """Per thread: the proxy the C call points at the caller's rows, and its output arguments."""

    def __init__(self) -> None:
        self.proxy = xgb.core._ProxyDMatrix()
        self.shape = ctypes.POINTER(xgb.core.c_bst_ulong)()
        self.dims = xgb.core.c_bst_ulong()
        self.predictions = ctypes.POINTER(ctypes.c_float)()
        self.arguments = (
            self.proxy.handle,
            ctypes.byref(self.shape),
            ctypes.byref(self.dims),
            ctypes.byref(self.predictions),
        )


_predict_state = _PredictState()


def _predict_dense(booster: xgb.Booster, matrix: np.ndarray) -> ctypes._Pointer:
    """Raw probabilities of a C-contiguous float32 matrix (rows x features); the result points
    into XGBoost's buffer for this thread and is valid until its next prediction."""
    rows, columns = matrix.shape
    interface = (
        f'{{"data":[{matrix.ctypes.data},true],"shape":[{rows},{columns}],'
        f'"typestr":"<f4","version":3}}'
    ).encode()
    state = _predict_state
    xgb.core._check_call(
        xgb.core._LIB.XGBoosterPredictFromDense(
            booster.handle, interface, _PREDICT_VALUES_CONFIG, *state.arguments
        )
    )
    return state.predictions


def _predict_one_row(booster: xgb.Booster, row: np.ndarray) -> float:
    return float(_predict_dense(booster, row)[0])


def _predict_rows(booster: xgb.Booster, matrix: np.ndarray) -> np.ndarray:
    """Raw probabilities as float32, one per row (what `inplace_predict` returns)."""
    if matrix.shape[0] == 0:
        return np.empty(0, dtype=np.float32)
    predictions = _predict_dense(booster, matrix)
    return np.ctypeslib.as_array(predictions, shape=(matrix.shape[0],)).copy()


def _prepared_calibration(calibration: Mapping[str, Any]) -> Mapping[str, Any]:
    """The calibration with isotonic points as float64 arrays, converted once per model instead
    of once per prediction (np.interp converts lists to the same arrays, so results are equal)."""
    if calibration.get("method") != "isotonic":
        return calibration
    return {
        **calibration,
        "x": np.asarray(calibration["x"], dtype=np.float64),
        "y": np.asarray(calibration["y"], dtype=np.float64),
    }


def apply_calibration(probabilities: np.ndarray, calibration: Mapping[str, Any]) -> np.ndarray:
    """Map raw XGBoost probabilities to calibrated ones (numpy only, no scikit-learn).

    isotonic: piecewise-linear through the fitted thresholds, clipped at the ends (what
    scikit-learn's IsotonicRegression(out_of_bounds="clip").predict computes);
    platt: a logistic regression on the raw probability's log-odds.
    """
    method = calibration.get("method", "none")
    if method == "none":
        return probabilities
    if method == "isotonic":
        return np.interp(probabilities, calibration["x"], calibration["y"])
    if method == "platt":
        p = np.clip(probabilities.astype(np.float64), 1e-12, 1 - 1e-12)
        log_odds = np.log(p) - np.log1p(-p)
        return 1.0 / (1.0 + np.exp(-(calibration["a"] * log_odds + calibration["b"])))
    raise ModelFileError(f"unknown calibration method {method!r}")


def _finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _validate_calibration(calibration: Mapping[str, Any]) -> None:
    """Every value the transform uses is checked, not just a probe row: a NaN point above the
    probe's raw score would otherwise pass and turn every higher score into NaN."""
    method = calibration.get("method")
    if method not in CALIBRATION_METHODS:
        raise ModelFileError(
            f"calibration method must be one of {CALIBRATION_METHODS}, got {method!r}"
        )
    if method == "isotonic":
        x, y = calibration.get("x"), calibration.get("y")
        if not isinstance(x, list) or not isinstance(y, list) or len(x) != len(y) or len(x) < 2:
            raise ModelFileError(
                "isotonic calibration needs equally long lists x and y (>= 2 points)"
            )
        if not all(_finite_number(v) for v in (*x, *y)):
            raise ModelFileError("isotonic calibration points must be finite numbers")
        if not all(0 <= v <= 1 for v in (*x, *y)):
            raise ModelFileError("isotonic calibration points must be probabilities in [0, 1]")
        if any(b < a for a, b in zip(x, x[1:], strict=False)) or any(
            b < a for a, b in zip(y, y[1:], strict=False)
        ):
            raise ModelFileError("isotonic calibration points must be non-decreasing")
    if method == "platt" and not all(_finite_number(calibration.get(k)) for k in ("a", "b")):
        raise ModelFileError("platt calibration needs finite numbers a and b")


def _served(scores: np.ndarray, model_version: str) -> np.ndarray:
    """The scores, if every one is a probability; a NaN (or anything outside [0, 1]) is never
    handed to a caller, whatever produced it."""
    valid = (scores >= 0) & (scores <= 1)  # False for NaN
    if not valid.all():
        raise NonFiniteScoreError(
            f"model {model_version} produced a non-finite score (or one outside [0, 1]) for "
            f"{int((~valid).sum())} of {len(scores)} lead(s); no score was served"
        )
    return scores


@dataclass(frozen=True)
class LoadedModel:
    """A validated, ready-to-score model. Immutable: swapping models swaps the whole object."""

    booster: xgb.Booster
    metadata: Mapping[str, Any]
    features: tuple[Feature, ...]
    categories: Mapping[str, tuple[str, ...]]
    file_sha256: str
    calibration: Mapping[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "calibration", _prepared_calibration(self.metadata["calibration"]))

    @property
    def version(self) -> str:
        return str(self.metadata["model_version"])

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def matrix(self, columns: Mapping[str, Sequence[object] | np.ndarray]) -> np.ndarray:
        return feature_matrix(columns, self.features, self.categories)

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Served probability for each row of a model matrix."""
        rows = self._checked(matrix)
        raw = _predict_rows(self.booster, rows)
        calibrated = apply_calibration(np.asarray(raw, dtype=np.float64), self.calibration)
        return _served(calibrated, self.version)

    def predict_row(self, matrix: np.ndarray) -> float:
        """Served probability for a one-row matrix; the same numbers as `predict_matrix`."""
        row = self._checked(matrix)
        if row.shape[0] != 1:
            raise ValueError(f"expected a 1 x {len(self.features)} matrix, got {row.shape}")
        raw = _predict_one_row(self.booster, row)
        return float(_served(apply_calibration(np.array([raw]), self.calibration), self.version)[0])

    def _checked(self, matrix: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(matrix, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != len(self.features):
            raise ValueError(f"expected a rows x {len(self.features)} matrix, got {rows.shape}")
        return rows

    def predict_proba(self, columns: Mapping[str, Sequence[object] | np.ndarray]) -> np.ndarray:
        """Served probability for each row of input-field columns."""
        return self.predict_matrix(self.matrix(columns))

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Exact tree SHAP values on the log-odds scale: rows x (features + bias)."""
        dmatrix = xgb.DMatrix(
            matrix,
            feature_names=list(self.feature_names),
            feature_types=[xgboost_feature_type(f) for f in self.features],
            enable_categorical=True,
            # Building it on one thread: the default thread pool costs ~0.8 ms per explained lead.
            nthread=1,
        )
        return self.booster.predict(dmatrix, pred_contribs=True, validate_features=False)


def build_metadata(
    *,
    model_version: str,
    feature_names: Sequence[str],
    categories: Mapping[str, Sequence[str]],
    calibration: Mapping[str, Any],
    threshold: float,
    **extra: Any,
) -> dict[str, Any]:
    """The metadata every published model carries; `extra` adds provenance and metrics."""
    features = features_for(feature_names)
    return {
        "schema_version": METADATA_SCHEMA_VERSION,
        "model_version": model_version,
        "features": [
            {"name": f.name, "kind": f.kind, "xgboost_type": xgboost_feature_type(f)}
            for f in features
        ],
        "input_fields": [
            {"name": field.name, "kind": field.kind, "required": field.required}
            for field in INPUT_FIELDS
            if any(field.name in f.inputs for f in features)
        ],
        "categories": {k: list(v) for k, v in categories.items()},
        "calibration": dict(calibration),
        "threshold": threshold,
        **extra,
    }


def _validated(booster: xgb.Booster, metadata: Mapping[str, Any], file_sha256: str) -> LoadedModel:
    if metadata.get("schema_version") != METADATA_SCHEMA_VERSION:
        raise ModelFileError(
            f"metadata schema_version {metadata.get('schema_version')!r} is not "
            f"{METADATA_SCHEMA_VERSION}"
        )
    for key in ("model_version", "features", "categories", "calibration"):
        if key not in metadata:
            raise ModelFileError(f"metadata lacks {key!r}")
    try:
        features = features_for([f["name"] for f in metadata["features"]])
    except KeyError as exc:
        raise ModelFileError(f"feature-incompatible model: {exc.args[0]}") from None
    names = [f.name for f in features]
    if booster.num_features() != len(names) or list(booster.feature_names or []) != names:
        raise ModelFileError(
            f"booster features {booster.feature_names} do not match metadata features {names}"
        )
    categories: dict[str, tuple[str, ...]] = {}
    for feature in features:
        if feature.kind == "categorical":
            values = metadata["categories"].get(feature.name)
            if not values or FALLBACK_CHANNEL not in values:
                raise ModelFileError(
                    f"categorical feature {feature.name!r} needs its categories, "
                    f"including {FALLBACK_CHANNEL!r}"
                )
            categories[feature.name] = tuple(values)
    _validate_calibration(metadata["calibration"])
    model = LoadedModel(booster, metadata, features, categories, file_sha256)
    try:
        model.predict_proba(_probe_row(features, categories))
    except NonFiniteScoreError:
        raise ModelFileError("model does not produce probabilities in [0, 1]") from None
    return model


def _probe_row(features: Sequence[Feature], categories: Mapping[str, Sequence[str]]) -> dict:
    columns: dict[str, list] = {field.name: [1.0] for field in INPUT_FIELDS}
    for name, values in categories.items():
        columns[name] = [values[0]]
    return columns


def load_model_bytes(raw: bytes, nthread: int = 1) -> LoadedModel:
    """Parse and validate a published model; raises ModelFileError saying what is wrong."""
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"not a JSON model file: {exc}") from None
    attributes = (
        document.get("learner", {}).get("attributes", {}) if isinstance(document, dict) else {}
    )
    if METADATA_ATTRIBUTE not in attributes:
        raise ModelFileError(f"no {METADATA_ATTRIBUTE!r} attribute: not a leadscore model")
    try:
        metadata = json.loads(attributes[METADATA_ATTRIBUTE])
        booster = xgb.Booster(params={"nthread": nthread}, model_file=bytearray(raw))
    except (json.JSONDecodeError, xgb.core.XGBoostError) as exc:
        raise ModelFileError(f"unreadable model: {exc}") from None
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{METADATA_ATTRIBUTE!r} must be a JSON object")
    return _validated(booster, metadata, hashlib.sha256(raw).hexdigest())


def load_model(path: str | os.PathLike[str], nthread: int = 1) -> LoadedModel:
    return load_model_bytes(Path(path).read_bytes(), nthread=nthread)


def model_bytes(booster: xgb.Booster, metadata: Mapping[str, Any]) -> bytes:
    """Serialise booster + metadata; the result is validated before anyone can publish it."""
    copy = booster.copy()
    copy.set_attr(**{METADATA_ATTRIBUTE: json.dumps(metadata, sort_keys=True)})
    raw = bytes(copy.save_raw(raw_format="json"))
    load_model_bytes(raw)
    return raw


def write_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename: readers see old or new."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; the published file is read by other processes and users.
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
