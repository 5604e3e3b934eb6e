"""Turning raw model probabilities into probabilities sales can take at face value.

Fitting uses scikit-learn; the result is a plain dict in the format that
`leadscore_core.artifact.apply_calibration` evaluates with numpy alone, so the scoring service
reproduces the calibrated probability exactly without scikit-learn.

Fit on predictions for leads the model did not learn from (training passes out-of-fold
predictions): calibrating on training predictions learns the model's over-confidence on data it
has memorised, not on new leads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.calibration import calibration_curve
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

from leadscore_assets.defs.training.evaluation import outcomes_and_scores
from leadscore_core.calibration import CALIBRATION_METHODS, log_odds

# Platt scaling is meant unregularised: a penalty would pull the slope towards 0, i.e. every lead
# towards the same score.
PLATT_INVERSE_REGULARISATION = 1e6
DEFAULT_CV_FOLDS = 5


def _isotonic_estimator() -> IsotonicRegression:
    return IsotonicRegression(out_of_bounds="clip")


def _platt_estimator() -> Pipeline:
    return make_pipeline(
        FunctionTransformer(log_odds),
        LogisticRegression(C=PLATT_INVERSE_REGULARISATION, max_iter=1000),
    )


def _as_column(probabilities: np.ndarray) -> np.ndarray:
    return probabilities.reshape(-1, 1)


def _fitted_calibration(method: str, outcomes: np.ndarray, raw: np.ndarray) -> dict[str, Any]:
    """The calibration dict for a validated method name (one of CALIBRATION_METHODS)."""
    if method == "none":
        return {"method": "none"}
    if method == "isotonic":
        isotonic = _isotonic_estimator().fit(_as_column(raw), outcomes)
        return {
            "method": "isotonic",
            "x": [float(v) for v in isotonic.X_thresholds_],
            "y": [float(v) for v in isotonic.y_thresholds_],
        }
    logistic = _platt_estimator().fit(_as_column(raw), outcomes)[-1]
    return {"method": "platt", "a": float(logistic.coef_[0, 0]), "b": float(logistic.intercept_[0])}


def _out_of_fold_predictions(
    outcomes: np.ndarray, raw: np.ndarray, cv_folds: int, random_state: int
) -> dict[str, np.ndarray]:
    """Each candidate's calibrated probability for every lead, fitted without that lead."""
    folds = StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=random_state)
    column = _as_column(raw)
    return {
        "none": raw,
        "platt": cross_val_predict(
            _platt_estimator(), column, outcomes, cv=folds, method="predict_proba"
        )[:, 1],
        "isotonic": cross_val_predict(_isotonic_estimator(), column, outcomes, cv=folds),
    }


def _select_by_cross_validation(
    outcomes: np.ndarray, raw: np.ndarray, cv_folds: int, random_state: int
) -> tuple[str, dict[str, Any]]:
    """The simplest method whose cross-validated Brier score is within one standard error of the
    best one's (the one-standard-error rule), and the numbers behind the choice.

    The standard error is that of the per-lead difference in squared error to the best method,
    which is paired, so it measures whether a gap is more than fold-to-fold noise.
    """
    minority = int(min(outcomes.sum(), outcomes.size - outcomes.sum()))
    if minority < cv_folds:
        raise ValueError(
            f"choosing a calibration by {cv_folds}-fold cross-validation needs at least "
            f"{cv_folds} leads of each outcome; the smaller class has {minority}"
        )
    predictions = _out_of_fold_predictions(outcomes, raw, cv_folds, random_state)
    squared_errors = {m: (p - outcomes) ** 2 for m, p in predictions.items()}
    cv_brier = {m: float(brier_score_loss(outcomes, p)) for m, p in predictions.items()}
    best = min(CALIBRATION_METHODS, key=cv_brier.__getitem__)
    standard_error = {
        m: float(np.std(squared_errors[m] - squared_errors[best], ddof=1) / np.sqrt(outcomes.size))
        for m in CALIBRATION_METHODS
    }
    chosen = next(
        m for m in CALIBRATION_METHODS if cv_brier[m] - cv_brier[best] <= standard_error[m]
    )
    selection = {
        "criterion": "cross-validated Brier score",
        "rule": "simplest method within one standard error of the lowest",
        "cv_folds": cv_folds,
        "cv_brier": cv_brier,
        "standard_error_vs_lowest": standard_error,
        "lowest": best,
    }
    return chosen, selection


def fit_calibration(
    y: ArrayLike,
    raw_probabilities: ArrayLike,
    method: str = "auto",
    random_state: int = 42,
    *,
    cv_folds: int = DEFAULT_CV_FOLDS,
) -> dict[str, Any]:
    """Fit a calibration on outcomes and raw probabilities from models that did not see them.

    Returns what `apply_calibration` consumes: {"method": "none"}, {"method": "isotonic", "x",
    "y"} (scikit-learn's fitted thresholds) or {"method": "platt", "a", "b"} (slope and intercept
    on the log-odds). With method="auto" the method is chosen by `cv_folds`-fold cross-validated
    Brier score among none, platt and isotonic, and the dict also carries "selection" with each
    candidate's score and the rule applied, for the model card; `apply_calibration` ignores it.
    """
    if method not in ("auto", *CALIBRATION_METHODS):
        raise ValueError(
            f"calibration method must be 'auto' or one of {CALIBRATION_METHODS}, got {method!r}"
        )
    outcomes, raw = outcomes_and_scores(y, raw_probabilities)
    if method != "none" and np.unique(raw).size < 2:
        raise ValueError("calibration needs at least two distinct raw probabilities")
    if method != "auto":
        return _fitted_calibration(method, outcomes, raw)
    chosen, selection = _select_by_cross_validation(outcomes, raw, cv_folds, random_state)
    return {**_fitted_calibration(chosen, outcomes, raw), "selection": selection}


def reliability_table(y: ArrayLike, probabilities: ArrayLike, n_bins: int = 10) -> list[dict]:
    """Observed conversion rate against mean predicted probability, per probability bin.

    Bins are equal-width (scikit-learn's `calibration_curve`, strategy "uniform"): with the
    default ten, the tier boundaries 0.2, 0.5 and 0.8 are bin edges, so the sparse high-score bins
    where routing happens stay visible instead of merging into one wide quantile bin. Like
    scikit-learn, a bin holds lower < p <= upper (the first also p = 0); empty bins are left out.
    Each row: bin, lower, upper, leads, mean_predicted, observed_rate.
    """
    outcomes, scores = outcomes_and_scores(y, probabilities)
    observed, predicted = calibration_curve(outcomes, scores, n_bins=n_bins, strategy="uniform")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # The same binning as calibration_curve, which does not return the counts.
    leads_per_bin = np.bincount(np.searchsorted(edges[1:-1], scores), minlength=n_bins)
    occupied = np.flatnonzero(leads_per_bin)
    return [
        {
            "bin": int(b) + 1,
            "lower": float(edges[b]),
            "upper": float(edges[b + 1]),
            "leads": int(leads_per_bin[b]),
            "mean_predicted": float(mean_predicted),
            "observed_rate": float(observed_rate),
        }
        for b, mean_predicted, observed_rate in zip(occupied, predicted, observed, strict=True)
    ]


def expected_calibration_error(y: ArrayLike, p: ArrayLike, n_bins: int = 10) -> float:
    """Lead-weighted mean gap between predicted and observed conversion over the reliability
    table's bins: 0.03 means scores are off by three percentage points on average."""
    rows = reliability_table(y, p, n_bins=n_bins)
    total = sum(row["leads"] for row in rows)
    return float(
        sum(row["leads"] * abs(row["observed_rate"] - row["mean_predicted"]) for row in rows)
        / total
    )
