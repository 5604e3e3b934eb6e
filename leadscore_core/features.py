"""The one feature specification of leadscore.

Every layer reads this module: the dbt mart's yml is checked against it, the CSV export selects
`CSV_COLUMNS`, training builds its matrix with `feature_matrix`, the published model's metadata
lists the features it used, and the scoring API builds its request schema from `INPUT_FIELDS` and
its matrix with the same `feature_matrix`. Keeping derivations here (not in SQL and Python twice)
is what keeps the API's scores identical to the pipeline's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np

# Channels that are not in a model's category list score as this GA4 channel group, both in the
# mart (dbt) and in the API: it is what GA4 itself calls traffic that matches no channel rule.
FALLBACK_CHANNEL = "Unassigned"

# GA4 counts a session as engaged when it lasts longer than this many seconds (among other rules).
# The dbt mart (through its vars), the demo generator and the field description below use it.
ENGAGED_SESSION_SECONDS = 10

ID_COLUMNS: tuple[str, ...] = ("contact_id", "email")
LABEL_COLUMN = "is_won"
# When the lead entered the CRM; the time-based holdout orders leads by it.
LEAD_TIMESTAMP_COLUMN = "lead_created_at"


@dataclass(frozen=True)
class InputField:
    """A per-lead value the mart produces and the API accepts."""

    name: str
    kind: Literal["count", "bool", "category", "seconds", "days"]
    required: bool
    description: str
    # Bounds of a numeric field (from 0): the API rejects values outside them and the mart's
    # tests fail on them, so training never holds a value the API would refuse.
    max_value: float | None = None
    # Another input field this one may never exceed (engaged sessions <= sessions).
    at_most: str | None = None


@dataclass(frozen=True)
class Feature:
    """A model input column, computed from input fields by `compute` (vectorised)."""

    name: str
    kind: Literal["numeric", "categorical"]
    inputs: tuple[str, ...]
    label: str  # how a sales rep reads it in an explanation
    # Written once for both: numpy columns (`feature_matrix`) and Python floats (`feature_row`).
    compute: Callable[[Mapping[str, Any]], Any] | None = None


INPUT_FIELDS: tuple[InputField, ...] = (
    InputField("sessions", "count", True, "Web sessions before the scoring cut-off.", 100_000),
    InputField(
        "engaged_sessions",
        "count",
        True,
        f"Sessions with more than {ENGAGED_SESSION_SECONDS} seconds of engagement; never more "
        "than `sessions`.",
        100_000,
        at_most="sessions",
    ),
    InputField("page_views", "count", True, "Page views over those sessions.", 10_000_000),
    InputField(
        "channel",
        "category",
        True,
        "First-touch GA4 default channel group, e.g. 'Paid Search'. Unknown values score as "
        f"'{FALLBACK_CHANNEL}'.",
    ),
    InputField(
        "is_first_visit",
        "bool",
        True,
        "True when all of the lead's activity is a single, first-ever visit.",
    ),
    InputField(
        "total_engagement_seconds",
        "seconds",
        False,
        "Total engagement time over the sessions, in seconds.",
        31_536_000,
    ),
    InputField(
        "days_active_span",
        "days",
        False,
        "Days between the lead's first and last session.",
        3_650,
    ),
    InputField(
        "distinct_channels",
        "count",
        False,
        "Number of different channel groups the lead's sessions came from.",
        100,
    ),
)
INPUT_FIELDS_BY_NAME: dict[str, InputField] = {f.name: f for f in INPUT_FIELDS}

# The project's example lead (the required inputs only): the API schema's example, the body the
# benchmarks send and the lead the tests score. Copy it before changing anything.
EXAMPLE_LEAD: dict[str, object] = {
    "sessions": 5,
    "engaged_sessions": 3,
    "page_views": 12,
    "channel": "Paid Search",
    "is_first_visit": False,
}


def _ratio(numerator: Any, denominator: Any) -> Any:
    """Per-session averages; undefined (missing) when there are no sessions.

    Vectorised for `feature_matrix`: dividing by NaN where the denominator is not positive gives
    NaN there, without a warning and with the same values as `np.divide(..., out=<NaNs>,
    where=denominator > 0)`. For `feature_row`, the same rule on Python floats (IEEE double
    division both ways, so both give identical values).
    """
    if isinstance(denominator, np.ndarray):
        return numerator / np.where(denominator > 0, denominator, np.nan)
    return numerator / denominator if denominator > 0 else math.nan


FEATURES: tuple[Feature, ...] = (
    Feature("sessions", "numeric", ("sessions",), "visits"),
    Feature("engaged_sessions", "numeric", ("engaged_sessions",), "engaged visits"),
    Feature("page_views", "numeric", ("page_views",), "page views"),
    Feature("is_first_visit", "numeric", ("is_first_visit",), "single first visit"),
    Feature("channel", "categorical", ("channel",), "first-touch channel"),
    Feature(
        "total_engagement_seconds",
        "numeric",
        ("total_engagement_seconds",),
        "total time engaged (s)",
    ),
    Feature(
        "avg_engagement_seconds",
        "numeric",
        ("total_engagement_seconds", "sessions"),
        "time engaged per visit (s)",
        lambda c: _ratio(c["total_engagement_seconds"], c["sessions"]),
    ),
    Feature(
        "pages_per_session",
        "numeric",
        ("page_views", "sessions"),
        "pages per visit",
        lambda c: _ratio(c["page_views"], c["sessions"]),
    ),
    Feature(
        "engaged_session_rate",
        "numeric",
        ("engaged_sessions", "sessions"),
        "share of engaged visits",
        lambda c: _ratio(c["engaged_sessions"], c["sessions"]),
    ),
    Feature(
        "days_active_span", "numeric", ("days_active_span",), "days between first and last visit"
    ),
    Feature("distinct_channels", "numeric", ("distinct_channels",), "channels used"),
)
FEATURES_BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}

FEATURE_SETS: dict[str, tuple[str, ...]] = {
    # The original model: four behavioural counts. Kept as the baseline.
    "seed": ("sessions", "engaged_sessions", "page_views", "is_first_visit"),
    "full": (
        "sessions",
        "engaged_sessions",
        "page_views",
        "is_first_visit",
        "channel",
        "total_engagement_seconds",
        "avg_engagement_seconds",
        "pages_per_session",
        "engaged_session_rate",
        "days_active_span",
        "distinct_channels",
    ),
}
DEFAULT_FEATURE_SET = "full"

# Columns of data/lead_scoring_features.csv, in order (the mart has these and may have more).
CSV_COLUMNS: tuple[str, ...] = (
    *ID_COLUMNS,
    LEAD_TIMESTAMP_COLUMN,
    *(f.name for f in INPUT_FIELDS),
    LABEL_COLUMN,
)


def xgboost_feature_type(feature: Feature) -> str:
    return "c" if feature.kind == "categorical" else "float"


def features_for(names: Sequence[str]) -> tuple[Feature, ...]:
    """Look features up by name; an unknown name is a model this code cannot serve."""
    unknown = [n for n in names if n not in FEATURES_BY_NAME]
    if unknown:
        raise KeyError(f"unknown feature(s): {', '.join(unknown)}")
    return tuple(FEATURES_BY_NAME[n] for n in names)


@lru_cache(maxsize=64)
def _category_codes(categories: tuple[str, ...]) -> tuple[dict[str, float], float]:
    index = {c: float(i) for i, c in enumerate(categories)}
    return index, index[FALLBACK_CHANNEL]


def encode_categories(values: Sequence[object], categories: Sequence[str]) -> np.ndarray:
    """Category codes in the model's order; unknown values take FALLBACK_CHANNEL's code."""
    index, fallback = _category_codes(tuple(categories))
    return np.fromiter(
        (index.get(v, fallback) for v in values), dtype=np.float64, count=len(values)
    )


def feature_matrix(
    columns: Mapping[str, Sequence[object] | np.ndarray],
    features: Sequence[Feature],
    categories: Mapping[str, Sequence[str]],
) -> np.ndarray:
    """The model matrix (rows x features, float32) from input-field columns.

    Missing optional inputs may be absent from `columns` or NaN: XGBoost treats them as missing,
    exactly as training does.
    """
    n_rows = len(next(iter(columns.values())))
    numeric: dict[str, np.ndarray] = {}
    for field in INPUT_FIELDS:
        if field.kind == "category":
            continue
        values = columns.get(field.name)
        numeric[field.name] = (
            np.full(n_rows, np.nan) if values is None else np.asarray(values, dtype=np.float64)
        )
    matrix = np.empty((n_rows, len(features)), dtype=np.float32)
    for j, feature in enumerate(features):
        if feature.kind == "categorical":
            matrix[:, j] = encode_categories(columns[feature.name], categories[feature.name])
        elif feature.compute is not None:
            matrix[:, j] = feature.compute(numeric)
        else:
            matrix[:, j] = numeric[feature.name]
    return matrix


def feature_values(
    values: Mapping[str, object],
    features: Sequence[Feature],
    categories: Mapping[str, Sequence[str]],
) -> list[float]:
    """One lead's model row as Python floats, from its input values: the same numbers as
    `feature_matrix` gives for that lead once stored as float32 (the same `compute`, on Python
    floats), in about a microsecond instead of a dozen, which matters for the scoring service's
    single lead."""
    numeric: dict[str, float] = {}
    for field in INPUT_FIELDS:
        if field.kind != "category":
            value = values.get(field.name)
            numeric[field.name] = math.nan if value is None else float(value)  # type: ignore[arg-type]
    row = []
    for feature in features:
        if feature.kind == "categorical":
            index, fallback = _category_codes(tuple(categories[feature.name]))
            row.append(index.get(values[feature.name], fallback))  # type: ignore[call-overload]
        elif feature.compute is not None:
            row.append(feature.compute(numeric))
        else:
            row.append(numeric[feature.name])
    return row


def feature_row(
    values: Mapping[str, object],
    features: Sequence[Feature],
    categories: Mapping[str, Sequence[str]],
) -> np.ndarray:
    """`feature_values` as a 1 x features float32 matrix."""
    return np.array([feature_values(values, features, categories)], dtype=np.float32)
