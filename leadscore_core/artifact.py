"""The published model file: XGBoost native JSON with leadscore's metadata embedded.

One file (not a model plus a sidecar) so that one atomic rename publishes both, and a reader can
never pair a new booster with old metadata. Plain `xgboost.Booster(model_file=...)` loads it; the
metadata sits in the booster attribute `leadscore_metadata`. Loading validates everything the
scoring service relies on, so a bad file is rejected before it can serve a single request.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
from pydantic import ValidationError

from leadscore_core.calibration import CALIBRATION_METHODS, log_odds
from leadscore_core.features import (
    INPUT_FIELDS,
    INPUT_FIELDS_BY_NAME,
    Feature,
    RowEncoder,
    feature_matrix,
    features_for,
    xgboost_feature_type,
)
from leadscore_core.metadata import SCHEMA_VERSION, ModelMetadata
from leadscore_core.predictor import (
    CompiledPredictor,
    Predictor,
    XGBoostPredictor,
    compiled_predictor_path,
    load_verified,
    splits_by_tree,
)

log = logging.getLogger(__name__)

METADATA_ATTRIBUTE = "leadscore_metadata"


class ModelFileError(ValueError):
    """The file is not a model this code can serve; the message says why."""


class NonFiniteScoreError(RuntimeError):
    """A loaded model produced a score that is not a probability: a bug, never served."""


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
        return 1.0 / (
            1.0 + np.exp(-(calibration["a"] * log_odds(probabilities) + calibration["b"]))
        )
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
    metadata: ModelMetadata
    features: tuple[Feature, ...]
    categories: Mapping[str, tuple[str, ...]]
    file_sha256: str
    # XGBoost unless a verified compiled predictor was found for this file (`load_model_bytes`).
    predictor: Predictor = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    calibration: Mapping[str, Any] = field(init=False, repr=False, compare=False)
    _row_encoder: RowEncoder = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "calibration", _prepared_calibration(self.metadata["calibration"]))
        object.__setattr__(self, "_row_encoder", RowEncoder(self.features, self.categories))
        if self.predictor is None:
            object.__setattr__(self, "predictor", XGBoostPredictor(self.booster))

    @property
    def version(self) -> str:
        return self.metadata.model_version

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def matrix(self, columns: Mapping[str, Sequence[object] | np.ndarray]) -> np.ndarray:
        return feature_matrix(columns, self.features, self.categories)

    def row(self, values: Mapping[str, object]) -> list[float]:
        """One lead's model row as Python floats; the same numbers as `matrix` gives for it."""
        return self._row_encoder(values)

    @property
    def category_counts(self) -> dict[int, int]:
        """Model column -> number of categories, for each categorical feature."""
        return {
            j: len(self.categories[f.name])
            for j, f in enumerate(self.features)
            if f.kind == "categorical"
        }

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        return apply_calibration(np.asarray(raw, dtype=np.float64), self.calibration)

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Served probability for each row of a model matrix."""
        raw = self.predictor.predict(self._checked(matrix))
        return _served(self.calibrate(raw), self.version)

    def predict_one(self, values: list[float]) -> float:
        """Served probability for one row given as Python floats (`feature_values`): what
        `predict_matrix` gives for it, without the array work a single row does not need."""
        raw = self.predictor.predict_one(values)
        if self.calibration["method"] != "none":
            raw = float(self.calibrate(np.array([raw], dtype=np.float32))[0])
        if not 0.0 <= raw <= 1.0:  # False for NaN
            _served(np.array([raw]), self.version)  # raises, with the usual message
        return raw

    def _checked(self, matrix: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(matrix, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != len(self.features):
            raise ValueError(f"expected a rows x {len(self.features)} matrix, got {rows.shape}")
        return rows

    def predict_proba(self, columns: Mapping[str, Sequence[object] | np.ndarray]) -> np.ndarray:
        """Served probability for each row of input-field columns."""
        return self.predict_matrix(self.matrix(columns))

    @cached_property
    def tree_splits(self) -> tuple[dict[int, np.ndarray], ...]:
        """Per tree, the model columns it splits on, with the float32 thresholds of its numerical
        splits on each (`predictor.splits_by_tree`); read from the booster once per model."""
        document = json.loads(bytes(self.booster.save_raw(raw_format="json")))
        return tuple(splits_by_tree(document))

    def contributions(self, matrix: np.ndarray, rounds: slice | None = None) -> np.ndarray:
        """Exact tree SHAP values on the log-odds scale: rows x (features + bias); of the trees
        of the boosting `rounds` only, when given."""
        dmatrix = xgb.DMatrix(
            matrix,
            feature_names=list(self.feature_names),
            feature_types=[xgboost_feature_type(f) for f in self.features],
            enable_categorical=True,
            # Building it on one thread: the default thread pool costs ~0.8 ms per explained lead.
            nthread=1,
        )
        booster = self.booster if rounds is None else self.booster[rounds]
        return booster.predict(dmatrix, pred_contribs=True, validate_features=False)


def build_metadata(
    *,
    model_version: str,
    feature_names: Sequence[str],
    categories: Mapping[str, Sequence[str]],
    calibration: Mapping[str, Any],
    threshold: float,
    **provenance: Any,
) -> ModelMetadata:
    """The metadata every published model carries; `provenance` adds the other ModelMetadata
    fields (metrics, runs, training data, ...)."""
    features = features_for(feature_names)
    return ModelMetadata(
        schema_version=SCHEMA_VERSION,
        model_version=model_version,
        features=[
            {"name": f.name, "kind": f.kind, "xgboost_type": xgboost_feature_type(f)}
            for f in features
        ],
        input_fields=[
            {"name": field.name, "kind": field.kind, "required": field.required}
            for field in INPUT_FIELDS
            if any(field.name in f.inputs for f in features)
        ],
        categories={k: list(v) for k, v in categories.items()},
        calibration=dict(calibration),
        threshold=threshold,
        **provenance,
    )


def _parsed(document: Any) -> ModelMetadata:
    if not isinstance(document, dict):
        raise ModelFileError(f"{METADATA_ATTRIBUTE!r} must be a JSON object")
    try:
        return ModelMetadata.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ModelFileError(f"invalid metadata: {where}: {error['msg']}") from None


def _validated(booster: xgb.Booster, metadata: ModelMetadata, file_sha256: str) -> LoadedModel:
    try:
        features = features_for([f["name"] for f in metadata.features])
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
            values = metadata.categories.get(feature.name)
            fallback = INPUT_FIELDS_BY_NAME[feature.name].fallback
            if not values or fallback not in values:
                raise ModelFileError(
                    f"categorical feature {feature.name!r} needs its categories, "
                    f"including {fallback!r}"
                )
            categories[feature.name] = tuple(values)
    _validate_calibration(metadata.calibration)
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


def load_model_bytes(raw: bytes, nthread: int = 1, compiled_dir: Path | None = None) -> LoadedModel:
    """Parse and validate a published model; raises ModelFileError saying what is wrong.

    With `compiled_dir`, the compiled predictor published there for this file's sha256 is used
    if it exists and agrees with XGBoost (see leadscore_core/predictor.py); otherwise XGBoost
    predicts, and the log says why.
    """
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
        stored_metadata = json.loads(attributes[METADATA_ATTRIBUTE])
        booster = xgb.Booster(params={"nthread": nthread}, model_file=bytearray(raw))
    except (json.JSONDecodeError, xgb.core.XGBoostError) as exc:
        raise ModelFileError(f"unreadable model: {exc}") from None
    model = _validated(booster, _parsed(stored_metadata), hashlib.sha256(raw).hexdigest())
    if compiled_dir is None:
        return model
    return _with_compiled_predictor(model, document, Path(compiled_dir))


def _with_compiled_predictor(
    model: LoadedModel, document: Mapping[str, Any], directory: Path
) -> LoadedModel:
    path = compiled_predictor_path(directory, model.file_sha256)
    if not path.exists():
        log.info("no compiled predictor %s for model %s: using XGBoost", path.name, model.version)
        return model
    try:
        compiled: CompiledPredictor = load_verified(
            path,
            model.predictor,
            document,
            model.category_counts,
            len(model.features),
            model.calibrate,
        )
    except (OSError, ValueError, AttributeError) as exc:
        log.warning("compiled predictor %s not used, XGBoost predicts instead: %s", path, exc)
        return model
    log.info("model %s predicts with the compiled predictor %s", model.version, path.name)
    return dataclasses.replace(model, predictor=compiled)


def load_model(
    path: str | os.PathLike[str], nthread: int = 1, compiled_dir: Path | None = None
) -> LoadedModel:
    return load_model_bytes(Path(path).read_bytes(), nthread=nthread, compiled_dir=compiled_dir)


def model_bytes(booster: xgb.Booster, metadata: ModelMetadata | Mapping[str, Any]) -> bytes:
    """Serialise booster + metadata; the result is validated before anyone can publish it."""
    parsed = metadata if isinstance(metadata, ModelMetadata) else _parsed(dict(metadata))
    copy = booster.copy()
    copy.set_attr(**{METADATA_ATTRIBUTE: json.dumps(parsed.document(), sort_keys=True)})
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
