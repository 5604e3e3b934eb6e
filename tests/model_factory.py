"""Train small real XGBoost models in the published format, for tests that need a model file
without running the whole pipeline (the pipeline's own tests cover the real training asset)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xgboost as xgb

from leadscore_core.artifact import build_metadata, model_bytes, write_atomically
from leadscore_core.features import (
    FALLBACK_CHANNEL,
    FEATURE_SETS,
    INPUT_FIELDS_BY_NAME,
    feature_matrix,
    features_for,
    learn_categories,
    xgboost_feature_type,
)

CHANNELS = ("Organic Search", "Paid Search", "Direct", "Referral", "Email", FALLBACK_CHANNEL)
LEAD_SOURCES = ("Webinar", "Trade show", "Newsletter")


def synthetic_columns(n_rows: int, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Input-field columns with a learnable signal, and labels."""
    rng = np.random.default_rng(seed)
    sessions = 1 + rng.poisson(2.0, n_rows)
    engaged = rng.binomial(sessions, 0.5)
    page_views = sessions + rng.poisson(3.0 * sessions)
    channel = rng.choice(np.array(CHANNELS, dtype=object), n_rows)
    columns = {
        "sessions": sessions.astype(float),
        "engaged_sessions": engaged.astype(float),
        "page_views": page_views.astype(float),
        "channel": channel,
        "is_first_visit": (sessions == 1).astype(float),
        "total_engagement_seconds": rng.gamma(2.0, 60.0, n_rows) * sessions,
        "days_active_span": rng.exponential(5.0, n_rows) * (sessions > 1),
        "distinct_channels": np.minimum(sessions, 1 + rng.poisson(0.5, n_rows)).astype(float),
    }
    logit = -4.0 + 1.2 * np.log1p(engaged) + 0.4 * np.log1p(page_views) + 1.0 * (channel == "Email")
    labels = (rng.random(n_rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return columns, labels


def with_contact_attributes(
    columns: dict[str, np.ndarray], labels: np.ndarray, seed: int = 0
) -> dict[str, np.ndarray]:
    """The columns plus CRM contact attributes that carry signal of their own: converted leads
    came from webinars far more often, and a fifth of the leads have no lead source."""
    rng = np.random.default_rng(seed + 1)
    n_rows = len(labels)
    source = np.where(
        rng.random(n_rows) < np.where(labels == 1, 0.7, 0.1),
        "Webinar",
        rng.choice(np.array(LEAD_SOURCES[1:], dtype=object), n_rows),
    ).astype(object)
    source[rng.random(n_rows) < 0.2] = None
    size = np.round(rng.lognormal(4, 1.5, n_rows))
    return {**columns, "lead_source": source, "company_size": size}


def train_model_file(
    path: Path,
    *,
    feature_set: str = "full",
    model_version: str = "test/1",
    n_rows: int = 4000,
    seed: int = 0,
    n_estimators: int = 50,
    num_parallel_tree: int = 1,
    contact_attributes: bool = False,
    feature_names: tuple[str, ...] | None = None,
) -> Path:
    """Train on synthetic rows and publish atomically to `path` in the served format: the
    feature set's features (or `feature_names`, e.g. an older model's), with the CRM contact
    attributes in the data when asked (else they are missing for every row)."""
    features = features_for(feature_names or FEATURE_SETS[feature_set])
    columns, labels = synthetic_columns(n_rows, seed)
    if contact_attributes:
        columns = with_contact_attributes(columns, labels, seed)
    vocabularies = {"channel": CHANNELS}
    categories = {
        f.name: learn_categories(
            INPUT_FIELDS_BY_NAME[f.name], columns.get(f.name, ()), vocabularies.get(f.name)
        )
        for f in features
        if f.kind == "categorical"
    }
    matrix = feature_matrix(columns, features, categories)
    dtrain = xgb.DMatrix(
        matrix,
        label=labels,
        feature_names=[f.name for f in features],
        feature_types=[xgboost_feature_type(f) for f in features],
        enable_categorical=True,
    )
    booster = xgb.train(
        {
            "objective": "binary:logistic",
            "max_depth": 4,
            "eta": 0.2,
            "nthread": 1,
            "seed": seed,
            "num_parallel_tree": num_parallel_tree,
        },
        dtrain,
        n_estimators,
    )
    metadata = build_metadata(
        model_version=model_version,
        feature_names=[f.name for f in features],
        categories=categories,
        calibration={"method": "none"},
        threshold=0.8,
        trained_at="2026-01-01T00:00:00+00:00",
        metrics={},
    )
    write_atomically(path, model_bytes(booster, metadata))
    return path
