"""Hyperparameters chosen per run: a bounded, seeded Optuna search against the seed's settings.

Why Optuna rather than scikit-learn's searches: its TPE sampler learns from earlier trials, so a
budget of a few dozen fits finds good settings where random or grid search needs many more; it
stops on a trial count or a wall-clock limit, whichever comes first; and each trial can use
XGBoost's own early stopping on the validation fold (scikit-learn's searches refit through the
estimator API and need a fixed number of trees or their own validation plumbing).

Every trial fits on the same fit rows and is scored on the same validation rows by log loss, a
proper scoring rule: it rewards ranking and honest probabilities together, where ROC AUC alone
would happily pick an over-confident model. The number of trees is the early-stopped count. The
seed's fixed settings (100 trees) are scored on the same validation rows, and the search's best
replaces them only when it scores better there; they are also the first trial, so the sampler
starts from them.

Deterministic for the same data and seed: the sampler is seeded, trials run one at a time, and
XGBoost's `hist` fits are reproducible with a fixed thread count. Only the time limit can make a
run differ from another (fewer trials on a busy machine); the summary says what ended the search.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import xgboost as xgb
from sklearn.metrics import log_loss, roc_auc_score

# The seed's settings, kept for comparability: every tuned model is compared with them.
SEED_HYPERPARAMETERS: dict[str, Any] = {
    "max_depth": 5,
    "learning_rate": 0.1,
    "n_estimators": 100,
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "random_state": 42,
}
# XGBoost's defaults for what the seed left unset: the seed's point in the search space.
_SEED_SEARCHED_VALUES = {
    "max_depth": 5,
    "learning_rate": 0.1,
    "min_child_weight": 1.0,
    "subsample": 1.0,
    "colsample_bytree": 1.0,
    "reg_lambda": 1.0,
}
# Trees are added until the validation log loss has not improved for this many rounds, at most
# MAX_TREES (a learning rate at the low end needs a few hundred).
EARLY_STOPPING_ROUNDS = 30
MAX_TREES = 1000
OBJECTIVE = "validation log loss"


@dataclass(frozen=True)
class TuningBudget:
    """How much searching a run may do: the search stops after `trials` completed trials or
    once `timeout_seconds` have passed, whichever comes first (a trial still fitting then is
    stopped and discarded)."""

    trials: int
    timeout_seconds: float

    def __post_init__(self) -> None:
        if self.trials < 0:
            raise ValueError(f"tuning trials must be 0 or more, got {self.trials}")
        if self.timeout_seconds <= 0:
            raise ValueError(f"the tuning time limit must be positive, got {self.timeout_seconds}")


@dataclass(frozen=True)
class TuningResult:
    hyperparameters: dict[str, Any]  # what the model is trained with: the search's or the seed's
    summary: dict[str, Any]  # for the model's metadata, MLflow and the model card
    trials: list[dict[str, Any]] = field(default_factory=list)  # one row per trial


def _suggest(trial: optuna.Trial) -> dict[str, Any]:
    """The search space: tree shape, step size, and the usual regularisers."""
    return {
        "max_depth": trial.suggest_int("max_depth", 2, 8),
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
        "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 100.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 0.1, 50.0, log=True),
    }


def booster_params(hyperparameters: Mapping[str, Any], nthread: int) -> dict[str, Any]:
    """`xgb.train` parameters from hyperparameters in the seed's naming (n_estimators and
    random_state are the number of rounds and the seed)."""
    params = {k: v for k, v in hyperparameters.items() if k not in ("n_estimators", "random_state")}
    params.update(seed=hyperparameters["random_state"], nthread=nthread, max_cat_to_onehot=1)
    return params


def _validation_scores(labels: np.ndarray, raw: np.ndarray) -> tuple[float, float]:
    return float(log_loss(labels, raw, labels=[0, 1])), float(roc_auc_score(labels, raw))


class _StopAtDeadline(xgb.callback.TrainingCallback):
    """Ends a fit once the search's time is up, so no trial overruns the limit by more than one
    boosting round (the trial is then discarded, not scored on a part of its trees)."""

    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        return time.monotonic() > self.deadline


def tune(
    fit: xgb.DMatrix,
    validation: xgb.DMatrix,
    budget: TuningBudget,
    *,
    nthread: int,
    seed: int,
) -> TuningResult:
    """Search on `fit`, score on `validation` (both with labels); return the settings to train
    the model with and the search's record. A budget of no trials is the caller's to handle."""
    if budget.trials < 1:
        raise ValueError("a search needs at least one trial")
    started = time.monotonic()
    deadline = started + budget.timeout_seconds
    validation_labels = validation.get_label().astype(np.int64)
    seed_booster = xgb.train(
        booster_params(SEED_HYPERPARAMETERS, nthread), fit, SEED_HYPERPARAMETERS["n_estimators"]
    )
    seed_loss, seed_auc = _validation_scores(validation_labels, seed_booster.predict(validation))

    def objective(trial: optuna.Trial) -> float:
        params = booster_params(
            {**SEED_HYPERPARAMETERS, **_suggest(trial), "eval_metric": "logloss"}, nthread
        )
        booster = xgb.train(
            params,
            fit,
            MAX_TREES,
            evals=[(validation, "validation")],
            early_stopping_rounds=EARLY_STOPPING_ROUNDS,
            callbacks=[_StopAtDeadline(deadline)],
            verbose_eval=False,
        )
        if time.monotonic() > deadline:
            raise optuna.TrialPruned("the search's time limit passed during this trial")
        trees = booster.best_iteration + 1
        loss, auc = _validation_scores(
            validation_labels, booster.predict(validation, iteration_range=(0, trees))
        )
        trial.set_user_attr("n_estimators", trees)
        trial.set_user_attr("validation_roc_auc", auc)
        return loss

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per trial is noise in the log
    try:
        study = optuna.create_study(
            direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed)
        )
        study.enqueue_trial(_SEED_SEARCHED_VALUES)
        remaining = deadline - time.monotonic()
        if remaining > 0:
            study.optimize(objective, n_trials=budget.trials, timeout=remaining)
    finally:
        optuna.logging.set_verbosity(verbosity)

    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = min(completed, key=lambda t: t.value) if completed else None
    better = best is not None and best.value < seed_loss
    summary: dict[str, Any] = {
        "method": "optuna TPE",
        "objective": OBJECTIVE,
        "budget_trials": budget.trials,
        "budget_seconds": budget.timeout_seconds,
        "fit_rows": fit.num_row(),
        "validation_rows": validation.num_row(),
        "trials": len(completed),
        "stopped_by": "trials" if len(completed) >= budget.trials else "time limit",
        "seconds": time.monotonic() - started,
        "seed_validation_log_loss": seed_loss,
        "seed_validation_roc_auc": seed_auc,
        "chosen": "tuned" if better else "seed",
    }
    rows = [_trial_row(t) for t in study.trials]
    if best is None:
        return TuningResult(dict(SEED_HYPERPARAMETERS), summary, rows)
    summary.update(
        best_trial=best.number,
        best_validation_log_loss=float(best.value),
        best_validation_roc_auc=float(best.user_attrs["validation_roc_auc"]),
    )
    tuned = {
        **SEED_HYPERPARAMETERS,
        **best.params,
        "n_estimators": best.user_attrs["n_estimators"],
        "eval_metric": "logloss",
    }
    return TuningResult(tuned if better else dict(SEED_HYPERPARAMETERS), summary, rows)


def _trial_row(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    return {
        "trial": trial.number,
        **trial.params,
        "n_estimators": trial.user_attrs.get("n_estimators"),
        "validation_log_loss": trial.value,
        "validation_roc_auc": trial.user_attrs.get("validation_roc_auc"),
        "seconds": trial.duration.total_seconds() if trial.duration else None,
        "state": trial.state.name,
    }
