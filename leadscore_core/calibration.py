"""Calibration rules shared by the training that fits a calibration and the service that applies it.

Defined once here so that the methods a model file may name and the log-odds Platt scaling is
fitted on are exactly those the scoring service evaluates.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

# Simplest first: "auto" keeps the simplest method that is not clearly worse than the best.
CALIBRATION_METHODS = ("none", "platt", "isotonic")
# Probabilities are clipped to [EPSILON, 1 - EPSILON] before taking log-odds, so 0 and 1 (which
# XGBoost can output in float32) map to finite values.
LOG_ODDS_EPSILON = 1e-12


def log_odds(probabilities: ArrayLike) -> np.ndarray:
    """log(p / (1 - p)) of probabilities clipped to [LOG_ODDS_EPSILON, 1 - LOG_ODDS_EPSILON]."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), LOG_ODDS_EPSILON, 1 - LOG_ODDS_EPSILON)
    return np.log(p) - np.log1p(-p)
