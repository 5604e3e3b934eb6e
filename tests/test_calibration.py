"""Calibration: the served (numpy-only) transform reproduces scikit-learn, it helps, and it is
fitted on out-of-fold predictions, so the model keeps every training lead."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb
from demo_features import demo_features_frame
from model_factory import CHANNELS, synthetic_columns
from sklearn.calibration import calibration_curve
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from leadscore_assets.defs.training.calibration import (
    PLATT_INVERSE_REGULARISATION,
    expected_calibration_error,
    fit_calibration,
    log_odds,
    reliability_table,
)
from leadscore_assets.defs.training.training import (
    CALIBRATION_CV_FOLDS,
    dmatrix,
    fit_booster,
    out_of_fold_predictions,
    split_indices,
    train,
)
from leadscore_assets.defs.training.tuning import SEED_HYPERPARAMETERS
from leadscore_assets.project import channel_groups
from leadscore_core.artifact import (
    apply_calibration,
    build_metadata,
    load_model_bytes,
    model_bytes,
)
from leadscore_core.features import FEATURE_SETS, feature_matrix, features_for

CHANNEL_GROUPS = {"channel": channel_groups()}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def calibrated_leads(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores that are true probabilities: each lead converts with exactly its score."""
    rng = np.random.default_rng(seed)
    probabilities = rng.beta(1.0, 6.0, n)
    return (rng.random(n) < probabilities).astype(int), probabilities


def overconfident(probabilities: np.ndarray) -> np.ndarray:
    """A logit-linear distortion Platt scaling can undo exactly: logit(s) = 2 logit(p) + 1, so
    logit(p) = 0.5 logit(s) - 0.5."""
    return _sigmoid(2.0 * log_odds(probabilities) + 1.0)


@pytest.fixture(scope="module")
def reweighted_xgboost_scores() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Raw probabilities of an XGBoost model trained with scale_pos_weight=10: ranks fine, but
    inflates every probability. Returns (outcomes, raw) for a calibration slice and a test slice,
    neither seen in training."""
    features = features_for(FEATURE_SETS["full"])
    columns, labels = synthetic_columns(12_000, seed=3)
    matrix = feature_matrix(columns, features, {"channel": CHANNELS})
    booster = xgb.train(
        {
            "objective": "binary:logistic",
            "max_depth": 4,
            "eta": 0.2,
            "scale_pos_weight": 10,
            "nthread": 1,
            "seed": 0,
        },
        dmatrix(matrix[:6000], features, labels[:6000]),
        50,
    )
    raw = booster.predict(dmatrix(matrix, features, labels)).astype(np.float64)
    return {
        "calibration": (labels[6000:9000], raw[6000:9000]),
        "test": (labels[9000:], raw[9000:]),
    }


@pytest.mark.parametrize("method", ["isotonic", "platt", "auto"])
def test_calibration_improves_brier_of_a_reweighted_model(reweighted_xgboost_scores, method):
    calibration = fit_calibration(*reweighted_xgboost_scores["calibration"], method=method)
    outcomes, raw = reweighted_xgboost_scores["test"]
    calibrated = apply_calibration(raw, calibration)
    raw_brier = brier_score_loss(outcomes, raw)
    assert raw_brier > 0.2  # the premise: the reweighted model is badly calibrated
    assert brier_score_loss(outcomes, calibrated) < 0.7 * raw_brier
    assert expected_calibration_error(outcomes, calibrated) < 0.5 * expected_calibration_error(
        outcomes, raw
    )


def test_calibration_improves_brier_after_a_monotone_distortion():
    outcomes, probabilities = calibrated_leads(8000, seed=11)
    distorted = probabilities**0.25  # monotone, pushes every score up
    calibration = fit_calibration(outcomes[:4000], distorted[:4000])
    before = brier_score_loss(outcomes[4000:], distorted[4000:])
    after = brier_score_loss(outcomes[4000:], apply_calibration(distorted[4000:], calibration))
    assert calibration["method"] != "none"
    assert after < 0.6 * before


def test_isotonic_is_served_exactly_as_scikit_learn_predicts():
    outcomes, probabilities = calibrated_leads(3000, seed=1)
    raw = probabilities**0.5
    calibration = fit_calibration(outcomes, raw, method="isotonic")
    reference = IsotonicRegression(out_of_bounds="clip").fit(raw, outcomes)
    assert calibration["x"] == reference.X_thresholds_.tolist()
    assert all(type(v) is float for v in calibration["x"] + calibration["y"])
    # New scores, including ones below and above every fitted threshold (clipped).
    new = np.concatenate([[0.0, raw.min() / 2, 1.0], np.random.default_rng(2).random(2000)])
    np.testing.assert_allclose(
        apply_calibration(new, calibration), reference.predict(new), rtol=0, atol=1e-12
    )


def test_platt_is_served_exactly_as_scikit_learn_predicts():
    outcomes, probabilities = calibrated_leads(3000, seed=1)
    raw = overconfident(probabilities)
    calibration = fit_calibration(outcomes, raw, method="platt")
    reference = LogisticRegression(C=PLATT_INVERSE_REGULARISATION, max_iter=1000).fit(
        log_odds(raw).reshape(-1, 1), outcomes
    )
    new = np.concatenate([[0.0, 1.0], np.random.default_rng(2).random(2000)])
    np.testing.assert_allclose(
        apply_calibration(new, calibration),
        reference.predict_proba(log_odds(new).reshape(-1, 1))[:, 1],
        rtol=0,
        atol=1e-9,
    )


def test_platt_undoes_a_logit_linear_distortion():
    outcomes, probabilities = calibrated_leads(20_000, seed=5)
    calibration = fit_calibration(outcomes, overconfident(probabilities), method="platt")
    assert calibration["a"] == pytest.approx(0.5, abs=0.05)
    assert calibration["b"] == pytest.approx(-0.5, abs=0.15)


def test_auto_keeps_well_calibrated_scores_as_they_are():
    calibration = fit_calibration(*calibrated_leads(5000, seed=4))
    assert calibration["method"] == "none"


def test_auto_picks_platt_for_a_distortion_platt_undoes():
    outcomes, probabilities = calibrated_leads(5000, seed=4)
    calibration = fit_calibration(outcomes, overconfident(probabilities))
    assert calibration["method"] == "platt"


def test_auto_records_why_it_chose(reweighted_xgboost_scores):
    outcomes, raw = reweighted_xgboost_scores["calibration"]
    selection = fit_calibration(outcomes, raw)["selection"]
    assert set(selection["cv_brier"]) == {"none", "platt", "isotonic"}
    # "none" fits nothing, so its cross-validated Brier score is the plain one.
    assert selection["cv_brier"]["none"] == pytest.approx(brier_score_loss(outcomes, raw))
    assert selection["cv_brier"]["none"] > max(
        selection["cv_brier"]["platt"], selection["cv_brier"]["isotonic"]
    )
    assert selection["cv_folds"] == 5
    assert selection["lowest"] == min(selection["cv_brier"], key=selection["cv_brier"].get)


def test_the_selection_record_does_not_change_the_served_probability(reweighted_xgboost_scores):
    calibration = fit_calibration(*reweighted_xgboost_scores["calibration"])
    without_record = {k: v for k, v in calibration.items() if k != "selection"}
    raw = reweighted_xgboost_scores["test"][1]
    np.testing.assert_array_equal(
        apply_calibration(raw, calibration), apply_calibration(raw, without_record)
    )


@pytest.mark.parametrize("method", ["auto", "isotonic", "platt", "none"])
def test_a_published_model_carries_the_calibration(reweighted_xgboost_scores, method):
    """The dict is JSON-ready and passes the artifact's validation, and the loaded model serves
    exactly the calibrated probability."""
    calibration = fit_calibration(*reweighted_xgboost_scores["calibration"], method=method)
    features = features_for(FEATURE_SETS["seed"])
    columns, labels = synthetic_columns(500, seed=9)
    matrix = feature_matrix(columns, features, {})
    booster = xgb.train(
        {"objective": "binary:logistic", "nthread": 1}, dmatrix(matrix, features, labels), 5
    )
    metadata = build_metadata(
        model_version="test/1",
        feature_names=[f.name for f in features],
        categories={},
        calibration=calibration,
        threshold=0.8,
    )
    model = load_model_bytes(model_bytes(booster, metadata))
    raw = booster.inplace_predict(matrix).astype(np.float64)
    np.testing.assert_array_equal(model.predict_proba(columns), apply_calibration(raw, calibration))


def test_unknown_method_and_degenerate_inputs_are_rejected():
    outcomes, probabilities = calibrated_leads(200, seed=0)
    with pytest.raises(ValueError, match="calibration method"):
        fit_calibration(outcomes, probabilities, method="beta")
    with pytest.raises(ValueError, match="two distinct"):
        fit_calibration(outcomes, np.full(200, 0.3), method="isotonic")
    with pytest.raises(ValueError, match="converted and unconverted"):
        fit_calibration(np.zeros(200, dtype=int), probabilities)
    few_wins = np.zeros(200, dtype=int)
    few_wins[:3] = 1
    with pytest.raises(ValueError, match="at least 5 leads of each outcome"):
        fit_calibration(few_wins, probabilities)


def test_reliability_table_is_scikit_learns_calibration_curve_with_counts():
    outcomes, probabilities = calibrated_leads(2000, seed=8)
    rows = reliability_table(outcomes, probabilities)
    observed, predicted = calibration_curve(outcomes, probabilities, n_bins=10)
    assert [row["observed_rate"] for row in rows] == observed.tolist()
    assert [row["mean_predicted"] for row in rows] == predicted.tolist()
    assert sum(row["leads"] for row in rows) == 2000
    for row in rows:
        in_bin = (probabilities > row["lower"]) & (probabilities <= row["upper"])
        if row["bin"] == 1:
            in_bin |= probabilities == 0
        assert row["leads"] == in_bin.sum()
        assert row["lower"] <= row["mean_predicted"] <= row["upper"]


def test_expected_calibration_error_by_hand():
    """Bin (0, 0.1]: two leads at 0.1, one converts: gap |0.5 - 0.1| = 0.4.
    Bin (0.8, 0.9]: two leads at 0.9, both convert: gap |1 - 0.9| = 0.1.
    Each bin holds half the leads: ECE = 0.5 x 0.4 + 0.5 x 0.1 = 0.25."""
    assert expected_calibration_error([0, 1, 1, 1], [0.1, 0.1, 0.9, 0.9]) == pytest.approx(0.25)


def test_expected_calibration_error_separates_calibrated_from_distorted_scores():
    outcomes, probabilities = calibrated_leads(20_000, seed=6)
    assert expected_calibration_error(outcomes, probabilities) < 0.01
    assert expected_calibration_error(outcomes, overconfident(probabilities)) > 0.05


def test_out_of_fold_predictions_come_from_models_that_never_saw_the_lead():
    """On labels that are pure noise, a deep model's predictions for the leads it learned from
    rank them far better than chance (memorised); each lead's out-of-fold prediction, the one
    the calibration is fitted on, does not."""
    features = features_for(FEATURE_SETS["full"])
    columns, _ = synthetic_columns(3000, seed=12)
    noise = np.random.default_rng(12).integers(0, 2, 3000)
    matrix = feature_matrix(columns, features, {"channel": CHANNELS})
    deep = {**SEED_HYPERPARAMETERS, "max_depth": 8, "n_estimators": 60}
    in_sample = fit_booster(matrix, noise, features, deep, nthread=1).inplace_predict(matrix)
    out_of_fold = out_of_fold_predictions(matrix, noise, features, deep, nthread=1)
    assert roc_auc_score(noise, in_sample) > 0.8
    assert abs(roc_auc_score(noise, out_of_fold) - 0.5) < 0.05


def test_each_out_of_fold_prediction_is_its_folds_model():
    """Fold k's rows are scored by a model fitted on exactly the other folds."""
    features = features_for(FEATURE_SETS["seed"])
    columns, labels = synthetic_columns(1000, seed=13)
    matrix = feature_matrix(columns, features, {})
    settings = {**SEED_HYPERPARAMETERS, "n_estimators": 20}
    out_of_fold = out_of_fold_predictions(matrix, labels, features, settings, nthread=1)
    folds = StratifiedKFold(n_splits=CALIBRATION_CV_FOLDS, shuffle=True, random_state=42)
    for fit, held_out in folds.split(matrix, labels):
        booster = fit_booster(matrix[fit], labels[fit], features, settings, nthread=1)
        np.testing.assert_array_equal(
            out_of_fold[held_out], booster.inplace_predict(matrix[held_out])
        )


@pytest.mark.parametrize("split", ["random", "time"])
def test_calibrating_withholds_no_training_lead_from_the_model(tmp_path, split):
    """The calibration is fitted on out-of-fold predictions for every training lead, and the
    model itself on every training lead: on a time split it learns from the newest ones too."""
    frame = demo_features_frame(3000, 5, tmp_path)
    train_rows, test_rows = split_indices(frame, split)
    trained = train(
        frame, feature_set="full", split=split, calibration="platt", categories=CHANNEL_GROUPS
    )
    assert trained.calibration["method"] == "platt"
    assert trained.rows["fit"] == trained.rows["calibration"] == len(train_rows)
    assert trained.rows["fit"] + trained.rows["test"] == len(frame)
    assert set(trained.seen_contact_ids) == set(frame["contact_id"].iloc[train_rows])
    # Asking for a calibration takes no lead away from the trees: they are exactly those of the
    # uncalibrated model, which learns from every training lead.
    uncalibrated = train(
        frame, feature_set="full", split=split, calibration="none", categories=CHANNEL_GROUPS
    )
    assert uncalibrated.booster.save_raw("json") == trained.booster.save_raw("json")
    assert len(test_rows) == trained.rows["test"]
