"""Hyperparameters searched per run: better than the seed's settings on the demo data without
worse calibration, bounded by its budget, and the same model for the same data and seed."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from demo_features import demo_features_frame
from sklearn.metrics import brier_score_loss, roc_auc_score

from leadscore_assets.defs.training.training import split_indices, train
from leadscore_assets.defs.training.tuning import SEED_HYPERPARAMETERS, TuningBudget
from leadscore_assets.project import channel_groups
from leadscore_core.features import LABEL_COLUMN

CHANNELS = {"channel": channel_groups()}
# Big enough that a gain over the seed's settings is more than holdout noise (4,000 test leads,
# about 460 conversions), small enough for a quick search. At 10,000 leads the time split's
# holdout Brier score came out 0.0005 worse for the tuned model (0.0743 against 0.0738, ROC AUC
# still better): a difference of the size of the holdout's noise, which 20,000 leads averages out
# (docs/model.md has the 93,000-lead figures).
DEMO_LEADS = 20_000
# A trial count, not the clock, ends these searches (the limit is far away), so they are
# reproducible on a busy machine.
BUDGET = TuningBudget(trials=12, timeout_seconds=600)


@pytest.fixture(scope="module")
def demo_frame(tmp_path_factory):
    return demo_features_frame(DEMO_LEADS, 42, tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def small_demo_frame(tmp_path_factory):
    return demo_features_frame(3_000, 7, tmp_path_factory.mktemp("small-demo"))


def _train(frame, *, tuning=None, feature_set="full", split="random", calibration="none"):
    return train(
        frame,
        feature_set=feature_set,
        split=split,
        calibration=calibration,
        categories=CHANNELS,
        tuning=tuning,
    )


def _holdout_scores(trained) -> tuple[float, float]:
    holdout = trained.test_rows
    return (
        roc_auc_score(holdout[LABEL_COLUMN], holdout["score"]),
        brier_score_loss(holdout[LABEL_COLUMN], holdout["score"]),
    )


@pytest.mark.parametrize("split", ["random", "time"])
def test_tuned_settings_beat_the_seeds_without_worse_calibration(demo_frame, split):
    """Same data, split and calibration request (auto): the searched settings rank the holdout
    better than the seed's fixed ones, and their served probabilities are no worse (Brier)."""
    seed = _train(demo_frame, split=split, calibration="auto")
    tuned = _train(demo_frame, split=split, calibration="auto", tuning=BUDGET)
    assert seed.uses_seed_settings and seed.tuning is None
    assert tuned.tuning["chosen"] == "tuned" and not tuned.uses_seed_settings
    assert tuned.tuning["trials"] == BUDGET.trials and tuned.tuning["stopped_by"] == "trials"
    assert tuned.test_rows["contact_id"].equals(seed.test_rows["contact_id"])
    seed_auc, seed_brier = _holdout_scores(seed)
    tuned_auc, tuned_brier = _holdout_scores(tuned)
    assert tuned_auc > seed_auc, (tuned_auc, seed_auc)
    assert tuned_brier <= seed_brier, (tuned_brier, seed_brier)


def test_the_search_is_recorded_and_its_choice_follows_the_validation_score(small_demo_frame):
    tuned = _train(small_demo_frame, split="time", tuning=TuningBudget(5, timeout_seconds=600))
    search, trials = tuned.tuning, tuned.tuning_trials
    assert [t["trial"] for t in trials] == list(range(5))
    # The first trial starts from the seed's settings.
    assert trials[0]["max_depth"] == 5 and trials[0]["learning_rate"] == pytest.approx(0.1)
    best = min(trials, key=lambda t: t["validation_log_loss"])
    assert search["best_trial"] == best["trial"]
    assert search["best_validation_log_loss"] == best["validation_log_loss"]
    beats_seed = best["validation_log_loss"] < search["seed_validation_log_loss"]
    assert search["chosen"] == ("tuned" if beats_seed else "seed")
    if beats_seed:
        assert tuned.hyperparameters["n_estimators"] == best["n_estimators"]
        assert tuned.hyperparameters["max_depth"] == best["max_depth"]
    # Validation rows are the newest 20% of the training rows; the model then learns from all.
    train_rows, _ = split_indices(small_demo_frame, "time")
    assert search["validation_rows"] == round(0.2 * len(train_rows))
    assert search["fit_rows"] + search["validation_rows"] == len(train_rows)
    assert tuned.rows["fit"] == len(train_rows)
    assert tuned.booster.num_boosted_rounds() == tuned.hyperparameters["n_estimators"]


def test_same_data_and_seed_give_the_same_model(small_demo_frame):
    budget = TuningBudget(trials=6, timeout_seconds=600)
    first, second = (_train(small_demo_frame, calibration="auto", tuning=budget) for _ in range(2))
    assert first.booster.save_raw("json") == second.booster.save_raw("json")
    assert first.hyperparameters == second.hyperparameters
    assert first.calibration == second.calibration

    def without_durations(rows):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]

    assert without_durations(first.tuning_trials) == without_durations(second.tuning_trials)
    np.testing.assert_array_equal(first.test_rows["score"], second.test_rows["score"])


def test_the_time_limit_ends_a_search_that_the_trials_would_not(small_demo_frame):
    tuned = _train(
        small_demo_frame, feature_set="seed", tuning=TuningBudget(10_000, timeout_seconds=1)
    )
    search = tuned.tuning
    assert search["stopped_by"] == "time limit"
    assert search["trials"] < 10_000
    # Only the trial the limit interrupted is discarded; every other one was scored.
    states = [row["state"] for row in tuned.tuning_trials]
    assert states.count("COMPLETE") == search["trials"]
    assert set(states[:-1]) <= {"COMPLETE"} and states[-1] in ("COMPLETE", "PRUNED")
    if search["chosen"] == "seed":
        assert tuned.uses_seed_settings


def test_no_trials_means_the_seeds_settings_without_a_search(small_demo_frame):
    trained = _train(small_demo_frame, tuning=TuningBudget(0, timeout_seconds=30))
    assert trained.hyperparameters == SEED_HYPERPARAMETERS
    assert trained.tuning is None and trained.rows["validation"] == 0
    assert trained.booster.num_boosted_rounds() == SEED_HYPERPARAMETERS["n_estimators"]


def test_a_budget_must_make_sense():
    with pytest.raises(ValueError, match="0 or more"):
        TuningBudget(trials=-1, timeout_seconds=10)
    with pytest.raises(ValueError, match="positive"):
        TuningBudget(trials=5, timeout_seconds=0)


def test_the_pipeline_makes_training_threads_wait_passively():
    """Set before XGBoost loads, in every process that imports the pipeline (the CLI, Dagster's
    code servers, the tests); an operator's own setting is kept."""
    probe = "import leadscore_assets, os; print(os.environ['OMP_WAIT_POLICY'])"
    environment = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    for given, expected in ((None, "PASSIVE"), ("ACTIVE", "ACTIVE")):
        env = environment if given is None else {**environment, "OMP_WAIT_POLICY": given}
        result = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == expected
