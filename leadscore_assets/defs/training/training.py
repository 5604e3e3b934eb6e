"""Training: the features CSV in, a fitted (and possibly calibrated) XGBoost model out.

Pure functions, no Dagster or MLflow, so they are unit-testable and the asset stays thin. The
seed's 80/20 split (random_state 42) is kept; hyperparameters are searched per run (`tuning.py`)
against the seed's fixed settings, and calibration is fitted on out-of-fold predictions over the
training rows, so the final model is fitted on every training row. docs/model.md has the numbers.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.model_selection import StratifiedKFold, train_test_split

from leadscore_assets.defs.training.calibration import fit_calibration
from leadscore_assets.defs.training.tuning import (
    SEED_HYPERPARAMETERS,
    TuningBudget,
    booster_params,
    tune,
)
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

TEST_SIZE = 0.2
SPLIT_RANDOM_STATE = 42
# Share of the training rows the hyperparameter search validates on (for a time split, the
# newest); the final model is fitted on all training rows again.
VALIDATION_SIZE = 0.2
# Folds of the out-of-fold predictions the calibration is fitted on: each fold's model learns
# from 80% of the training rows, as large a share as the validation fits'.
CALIBRATION_CV_FOLDS = 5
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
    # ISO 8601 row by row: the export writes whole seconds without a fraction (`10:00:00+00`)
    # and others with one (`10:00:00.123+00`); pandas would otherwise infer one format from the
    # first row and refuse the rest.
    frame[LEAD_TIMESTAMP_COLUMN] = pd.to_datetime(
        frame[LEAD_TIMESTAMP_COLUMN], utc=True, format="ISO8601"
    )
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


def _validation_split(
    frame: pd.DataFrame, train: np.ndarray, kind: str
) -> tuple[np.ndarray, np.ndarray]:
    """Carve the search's validation rows out of the training rows the same way the test set
    was cut (for a time split: the newest training leads, so settings are chosen for leads newer
    than those they learn from)."""
    fit, validation = split_indices(frame.iloc[train], kind, test_size=VALIDATION_SIZE)
    return train[fit], train[validation]


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
    return xgb.train(
        booster_params(hyperparameters, nthread),
        dmatrix(matrix, features, labels),
        hyperparameters["n_estimators"],
    )


def out_of_fold_predictions(
    matrix: np.ndarray,
    labels: np.ndarray,
    features: Sequence[Feature],
    hyperparameters: Mapping[str, Any],
    nthread: int,
    folds: int = CALIBRATION_CV_FOLDS,
) -> np.ndarray:
    """Every row's raw probability from a model fitted on the other folds (stratified K-fold).

    This is what scikit-learn's `CalibratedClassifierCV(ensemble=False)` fits its calibrator on:
    predictions on rows the model did not learn from, for every training row, so no slice has to
    be withheld from the final model.
    """
    raw = np.empty(len(labels), dtype=np.float64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SPLIT_RANDOM_STATE)
    for fit, held_out in splitter.split(matrix, labels):
        booster = fit_booster(matrix[fit], labels[fit], features, hyperparameters, nthread)
        raw[held_out] = booster.inplace_predict(matrix[held_out])
    return raw


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
    hyperparameters: dict[str, Any]  # what the booster was trained with
    # The search's record (None when the seed's settings were used without a search) and its
    # trials, one row each.
    tuning: dict[str, Any] | None = None
    tuning_trials: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0  # wall time of `train`
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def uses_seed_settings(self) -> bool:
        return self.hyperparameters == SEED_HYPERPARAMETERS


def train(
    frame: pd.DataFrame,
    *,
    feature_set: str,
    split: str,
    calibration: str,
    categories: Mapping[str, Sequence[str]],
    tuning: TuningBudget | None = None,
    nthread: int = 2,
) -> TrainedModel:
    """Split; choose hyperparameters (a search within `tuning`, else the seed's settings); fit
    on every training row; calibrate on out-of-fold predictions; score the test rows.

    `categories` gives a categorical feature's vocabulary (channel: GA4's groups); every
    categorical feature's categories are learned from the training rows (`learn_categories`).
    """
    started = time.perf_counter()
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
    learning = _mix_in_missing_optional_inputs(matrix, blanked)

    hyperparameters, search, validation_rows = dict(SEED_HYPERPARAMETERS), None, 0
    if tuning is not None and tuning.trials > 0:
        fit_rows, held_out = _validation_split(frame, train_rows, split)
        search = tune(
            dmatrix(learning[fit_rows], features, labels[fit_rows]),
            dmatrix(learning[held_out], features, labels[held_out]),
            tuning,
            nthread=nthread,
            seed=SPLIT_RANDOM_STATE,
        )
        hyperparameters, validation_rows = search.hyperparameters, len(held_out)
    booster = fit_booster(
        learning[train_rows], labels[train_rows], features, hyperparameters, nthread
    )

    if calibration == "none":
        calibration_map: dict[str, Any] = {"method": "none"}
    else:
        calibration_map = fit_calibration(
            labels[train_rows],
            out_of_fold_predictions(
                learning[train_rows], labels[train_rows], features, hyperparameters, nthread
            ),
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
        hyperparameters=hyperparameters,
        tuning=search.summary if search else None,
        tuning_trials=search.trials if search else [],
        seconds=time.perf_counter() - started,
        rows={
            "total": len(frame),
            "fit": len(train_rows),
            "validation": validation_rows,
            "calibration": 0 if calibration == "none" else len(train_rows),
            "test": len(test_rows),
            "positives": int(labels.sum()),
        },
    )
