"""Training: the features CSV in, a fitted (and possibly calibrated) XGBoost model out.

Pure functions, no Dagster or MLflow, so they are unit-testable and the asset stays thin. The
seed's settings are kept (max_depth 5, learning_rate 0.1, 100 trees, 80/20 split with
random_state 42); what changed is documented in docs/model.md.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.model_selection import train_test_split

from leadscore_assets.defs.training.calibration import fit_calibration
from leadscore_core.artifact import apply_calibration
from leadscore_core.features import (
    CSV_COLUMNS,
    FEATURE_SETS,
    INPUT_FIELDS,
    INPUT_FIELDS_BY_NAME,
    LABEL_COLUMN,
    LEAD_TIMESTAMP_COLUMN,
    Feature,
    feature_matrix,
    features_for,
    learn_categories,
    xgboost_feature_type,
)

SEED_HYPERPARAMETERS: dict[str, Any] = {
    "max_depth": 5,
    "learning_rate": 0.1,
    "n_estimators": 100,
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "random_state": 42,
}
TEST_SIZE = 0.2
SPLIT_RANDOM_STATE = 42
# Share of the training rows held out to fit the calibration map (when calibrating).
CALIBRATION_SIZE = 0.2
# Share of training rows whose optional inputs are blanked, so the trees learn what to do when
# a caller (like the seed's five-field /score request) does not send them.
OPTIONAL_INPUTS_MISSING_SHARE = 0.3

_CSV_DTYPES: dict[str, Any] = {
    "contact_id": "string",  # CRM ids are text: integers, UUIDs, Salesforce or hex ids
    "email": "string",
    LEAD_TIMESTAMP_COLUMN: "string",
    LABEL_COLUMN: "int64",
    **{
        f.name: {"count": "float64", "seconds": "float64", "days": "float64", "category": "string"}[
            f.kind
        ]
        for f in INPUT_FIELDS
        if f.kind != "bool"
    },
}


# Columns a features CSV may lack (one written before they existed): missing for every lead.
_OPTIONAL_CSV_COLUMNS = frozenset(f.name for f in INPUT_FIELDS if not f.required)


def read_features_csv(path: Path) -> pd.DataFrame:
    """Load the exported features, insisting on the specified columns (named when missing)."""
    with path.open(newline="") as handle:
        header = next(csv.reader(handle), [])
    missing = [c for c in CSV_COLUMNS if c not in header and c not in _OPTIONAL_CSV_COLUMNS]
    if missing:
        raise ValueError(f"{path.name} lacks column(s): {', '.join(missing)}")
    present = [c for c in CSV_COLUMNS if c in header]
    frame = pd.read_csv(
        path, usecols=present, dtype={c: t for c, t in _CSV_DTYPES.items() if c in present}
    )
    for absent in (c for c in CSV_COLUMNS if c not in header):
        frame[absent] = pd.Series(None, index=frame.index, dtype=_CSV_DTYPES[absent])
    frame = frame[list(CSV_COLUMNS)]
    for bool_field in (f.name for f in INPUT_FIELDS if f.kind == "bool"):
        frame[bool_field] = (
            frame[bool_field]
            .map({True: 1.0, False: 0.0, "true": 1.0, "false": 0.0})
            .astype("float64")
        )
    frame[LEAD_TIMESTAMP_COLUMN] = pd.to_datetime(frame[LEAD_TIMESTAMP_COLUMN], utc=True)
    return frame


def input_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The input-field columns `feature_matrix` (and the API) take."""
    columns: dict[str, np.ndarray] = {}
    for f in INPUT_FIELDS:
        if f.kind == "category":
            # None (unknown) stays missing for XGBoost; an unknown value is not the fallback.
            columns[f.name] = frame[f.name].to_numpy(dtype=object, na_value=None)
        else:
            columns[f.name] = frame[f.name].to_numpy(dtype=np.float64, na_value=np.nan)
    return columns


def split_indices(
    frame: pd.DataFrame, kind: str, test_size: float = TEST_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row positions.

    random: the seed's 80/20 split (random_state 42). time: the newest 20% of leads by
    `lead_created_at` are the test set, so no training lead is newer than a test lead.
    """
    positions = np.arange(len(frame))
    if kind == "random":
        train, test = train_test_split(
            positions, test_size=test_size, random_state=SPLIT_RANDOM_STATE
        )
        return np.sort(train), np.sort(test)
    if kind == "time":
        # Leads created at the same instant keep the CSV's order (by contact id).
        created = frame[LEAD_TIMESTAMP_COLUMN].to_numpy(dtype="datetime64[ns]")
        order = np.argsort(created, kind="stable")
        n_test = int(round(len(frame) * test_size))
        return np.sort(order[: len(frame) - n_test]), np.sort(order[len(frame) - n_test :])
    raise ValueError(f"unknown split {kind!r}; use 'random' or 'time'")


def _calibration_split(
    frame: pd.DataFrame, train: np.ndarray, kind: str
) -> tuple[np.ndarray, np.ndarray]:
    """Carve the calibration slice out of the training rows the same way the test set was cut
    (for a time split: the newest training leads)."""
    fit, calibrate = split_indices(frame.iloc[train], kind, test_size=CALIBRATION_SIZE)
    return train[fit], train[calibrate]


def dmatrix(
    matrix: np.ndarray, features: Sequence[Feature], labels: np.ndarray | None = None
) -> xgb.DMatrix:
    return xgb.DMatrix(
        matrix,
        label=labels,
        feature_names=[f.name for f in features],
        feature_types=[xgboost_feature_type(f) for f in features],
        enable_categorical=True,
    )


def fit_booster(
    matrix: np.ndarray,
    labels: np.ndarray,
    features: Sequence[Feature],
    hyperparameters: Mapping[str, Any],
    nthread: int,
) -> xgb.Booster:
    params = {k: v for k, v in hyperparameters.items() if k not in ("n_estimators", "random_state")}
    params.update(seed=hyperparameters["random_state"], nthread=nthread, max_cat_to_onehot=1)
    return xgb.train(params, dmatrix(matrix, features, labels), hyperparameters["n_estimators"])


def _with_optional_inputs_missing(
    columns: Mapping[str, np.ndarray],
    features: Sequence[Feature],
    categories: Mapping[str, Sequence[str]],
) -> np.ndarray | None:
    """The matrix as a caller sending only the required inputs produces it (None when the
    feature set uses no optional input)."""
    optional = {f.name for f in INPUT_FIELDS if not f.required}
    if not any(optional.intersection(f.inputs) for f in features):
        return None
    blank = {
        name: np.full(len(values), np.nan) for name, values in columns.items() if name in optional
    }
    return feature_matrix({**columns, **blank}, features, categories)


def _mix_in_missing_optional_inputs(matrix: np.ndarray, blanked: np.ndarray | None) -> np.ndarray:
    """Training rows with a fixed random share switched to their required-inputs-only form."""
    if blanked is None:
        return matrix
    rng = np.random.default_rng(SPLIT_RANDOM_STATE)
    chosen = rng.random(len(matrix)) < OPTIONAL_INPUTS_MISSING_SHARE
    return np.where(chosen[:, None], blanked, matrix)


@dataclass
class TrainedModel:
    booster: xgb.Booster
    feature_set: str
    features: tuple[Feature, ...]
    categories: dict[str, list[str]]
    calibration: dict[str, Any]
    split: str
    test_rows: pd.DataFrame  # the holdout: input fields, label, raw and served scores
    seen_contact_ids: np.ndarray  # every lead the model (or its calibration) learned from
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]


def train(
    frame: pd.DataFrame,
    *,
    feature_set: str,
    split: str,
    calibration: str,
    categories: Mapping[str, Sequence[str]],
    hyperparameters: Mapping[str, Any] = SEED_HYPERPARAMETERS,
    nthread: int = 2,
) -> TrainedModel:
    """Split, fit, calibrate on a held-out slice of the training rows, and score the test rows.

    `categories` gives a categorical feature's vocabulary (channel: GA4's groups); every
    categorical feature's categories are learned from the training rows (`learn_categories`).
    """
    if feature_set not in FEATURE_SETS:
        raise ValueError(
            f"unknown feature set {feature_set!r}; choose from {', '.join(FEATURE_SETS)}"
        )
    labels = frame[LABEL_COLUMN].to_numpy()
    if len(np.unique(labels)) < 2:
        raise ValueError("the training data has only one class; nothing to learn")
    features = features_for(FEATURE_SETS[feature_set])
    columns = input_columns(frame)
    train_rows, test_rows = split_indices(frame, split)
    used_categories = {
        f.name: learn_categories(
            INPUT_FIELDS_BY_NAME[f.name], columns[f.name][train_rows], categories.get(f.name)
        )
        for f in features
        if f.kind == "categorical"
    }
    matrix = feature_matrix(columns, features, used_categories)
    blanked = _with_optional_inputs_missing(columns, features, used_categories)

    if calibration == "none":
        fit_rows, calibration_rows = train_rows, train_rows[:0]
    else:
        fit_rows, calibration_rows = _calibration_split(frame, train_rows, split)
    learning = _mix_in_missing_optional_inputs(matrix, blanked)
    booster = fit_booster(learning[fit_rows], labels[fit_rows], features, hyperparameters, nthread)

    if calibration == "none":
        calibration_map: dict[str, Any] = {"method": "none"}
    else:
        raw_calibration = booster.inplace_predict(learning[calibration_rows])
        calibration_map = fit_calibration(
            labels[calibration_rows],
            raw_calibration,
            method=calibration,
            random_state=SPLIT_RANDOM_STATE,
        )
    raw_test = np.asarray(booster.inplace_predict(matrix[test_rows]), dtype=np.float64)
    holdout = frame.iloc[test_rows][list(CSV_COLUMNS)].reset_index(drop=True)
    holdout["raw_score"] = raw_test
    holdout["score"] = apply_calibration(raw_test, calibration_map)
    if blanked is not None:
        raw_required_only = booster.inplace_predict(blanked[test_rows])
        holdout["score_required_inputs_only"] = apply_calibration(
            np.asarray(raw_required_only, dtype=np.float64), calibration_map
        )
    return TrainedModel(
        booster=booster,
        feature_set=feature_set,
        features=features,
        categories=used_categories,
        calibration=calibration_map,
        split=split,
        test_rows=holdout,
        seen_contact_ids=frame["contact_id"].to_numpy()[train_rows],
        rows={
            "total": len(frame),
            "fit": len(fit_rows),
            "calibration": len(calibration_rows),
            "test": len(test_rows),
            "positives": int(labels.sum()),
        },
    )
