"""The one feature specification of leadscore.

Every layer reads this module: the dbt mart's yml is checked against it, the CSV export selects
`CSV_COLUMNS`, training builds its matrix with `feature_matrix`, the published model's metadata
lists the features it used, and the scoring API builds its request schema from `INPUT_FIELDS` and
its matrix with the same `feature_matrix`. Keeping derivations here (not in SQL and Python twice)
is what keeps the API's scores identical to the pipeline's.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np

# Channels that are not in a model's category list score as this GA4 channel group, both in the
# mart (dbt) and in the API: it is what GA4 itself calls traffic that matches no channel rule.
FALLBACK_CHANNEL = "Unassigned"
# The same for the CRM's categorical contact attributes (lead source, job title, ...).
OTHER = "Other"

# GA4 counts a session as engaged when it lasts longer than this many seconds (among other rules).
# The dbt mart (through its vars), the demo generator and the field description below use it.
ENGAGED_SESSION_SECONDS = 10

# Channel values match GA4's default channel groups by this key: letters and digits only, lower
# case, so "Organic Search", "organic search", "ORGANIC_SEARCH" and "Cross network" /
# "Cross-network" are one group. The mart applies the same pattern (dbt macro `category_key`, the
# pattern passed in the dbt vars) and the API matches a request's channel by it, so both map a
# value identically. ASCII only on purpose: every group name is ASCII, and the rule is then exactly
# the same in Python, DuckDB and PostgreSQL.
CATEGORY_KEY_PATTERN = "[^A-Za-z0-9]+"
_NOT_KEY = re.compile(CATEGORY_KEY_PATTERN)

# A learned category needs at least this many training leads; rarer values score as the field's
# fallback, so a value seen a handful of times cannot carry a category of its own.
MIN_CATEGORY_LEADS = 20
# The longest categorical value the scoring API accepts in a request. A longer value in the
# training data never becomes a category (it scores as the fallback), so no model depends on a
# value that no request can carry.
MAX_CATEGORY_LENGTH = 100

# Ids (contacts, deals, sessions) are text: integers, UUIDs, Salesforce or hex ids. The loader
# refuses longer ones, so every contact id fits the API's `contact_id` and the lead scores.
MAX_ID_LENGTH = 128

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
    # A column of the CRM contacts export, copied onto the lead as it is (landing schema v2);
    # otherwise the mart derives the field from the lead's sessions.
    from_contacts: bool = False
    # Categorical fields: the category unknown (and too rare) values score as, how many of the
    # most frequent training values keep a category of their own, and whether values match by
    # `category_key` (channel) or exactly as written (free-text CRM values).
    fallback: str | None = None
    max_categories: int | None = None
    match_by_key: bool = False


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
        "First-touch GA4 default channel group, e.g. 'Paid Search' (case, spaces and punctuation "
        f"do not matter). Unknown values score as '{FALLBACK_CHANNEL}'.",
        fallback=FALLBACK_CHANNEL,
        max_categories=30,
        match_by_key=True,
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
    # Contact attributes (landing schema v2, optional columns of crm_contacts). Categorical ones
    # keep the model's most frequent training values; others score as their fallback.
    InputField(
        "lead_source",
        "category",
        False,
        "The CRM's lead source (original source, or the form's 'how did you hear about us' "
        f"answer), as the CRM writes it. Values the model does not know score as '{OTHER}'.",
        from_contacts=True,
        fallback=OTHER,
        max_categories=50,
    ),
    InputField(
        "job_title",
        "category",
        False,
        f"The contact's job title, as the CRM writes it. Values the model does not know score as "
        f"'{OTHER}'.",
        from_contacts=True,
        fallback=OTHER,
        max_categories=50,
    ),
    InputField(
        "industry",
        "category",
        False,
        f"The contact's company industry, as the CRM writes it. Values the model does not know "
        f"score as '{OTHER}'.",
        from_contacts=True,
        fallback=OTHER,
        max_categories=30,
    ),
    InputField(
        "country",
        "category",
        False,
        f"The contact's country, as the CRM writes it. Values the model does not know score as "
        f"'{OTHER}'.",
        from_contacts=True,
        fallback=OTHER,
        max_categories=50,
    ),
    InputField(
        "company_size",
        "count",
        False,
        "Employees of the contact's company.",
        10_000_000,
        from_contacts=True,
    ),
)
INPUT_FIELDS_BY_NAME: dict[str, InputField] = {f.name: f for f in INPUT_FIELDS}
CONTACT_ATTRIBUTES: tuple[InputField, ...] = tuple(f for f in INPUT_FIELDS if f.from_contacts)

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
    Feature("lead_source", "categorical", ("lead_source",), "lead source"),
    Feature("job_title", "categorical", ("job_title",), "job title"),
    Feature("industry", "categorical", ("industry",), "industry"),
    Feature("country", "categorical", ("country",), "country"),
    Feature("company_size", "numeric", ("company_size",), "company size (employees)"),
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
        # Contact attributes: when an export lacks them they are missing for every lead, and
        # XGBoost never splits on a feature that is always missing, so they cost nothing there.
        *(f.name for f in CONTACT_ATTRIBUTES),
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


def category_key(value: str) -> str:
    """What a channel value is matched by: its ASCII letters and digits, in lower case."""
    return _NOT_KEY.sub("", value).lower()


# Requests repeat the same few channel spellings: their keys are computed once.
_cached_category_key = lru_cache(maxsize=4_096)(category_key)


def _categorical_field(feature: Feature) -> InputField:
    return INPUT_FIELDS_BY_NAME[feature.inputs[0]]


@lru_cache(maxsize=64)
def _category_codes(categories: tuple[str, ...], field_name: str) -> tuple[dict[str, float], float]:
    """Category -> code (by key where the field matches by key), and the fallback's code."""
    field = INPUT_FIELDS_BY_NAME[field_name]
    key = category_key if field.match_by_key else str
    index: dict[str, float] = {}
    for code, category in enumerate(categories):
        index.setdefault(key(category), float(code))
    return index, index[key(field.fallback or "")]


def _code(value: object, index: Mapping[str, float], fallback: float, by_key: bool) -> float:
    """A value's category code; None or NaN (unknown) stays missing for XGBoost."""
    if value is None or value != value:  # NaN is the one value not equal to itself
        return math.nan
    return index.get(_cached_category_key(value) if by_key else value, fallback)  # type: ignore[arg-type]


def encode_categories(
    values: Sequence[object], categories: Sequence[str], field: InputField
) -> np.ndarray:
    """Category codes in the model's order: unknown values take the fallback's code, missing
    values (None, NaN) stay missing."""
    index, fallback = _category_codes(tuple(categories), field.name)
    return np.fromiter(
        (_code(v, index, fallback, field.match_by_key) for v in values),
        dtype=np.float64,
        count=len(values),
    )


def learn_categories(
    field: InputField, values: Iterable[object], vocabulary: Sequence[str] | None = None
) -> list[str]:
    """The categories a model gives a categorical field, learned from its training values.

    A value keeps a category of its own when at least MIN_CATEGORY_LEADS training leads have it,
    up to the field's `max_categories` (the fallback, always a category, included); rarer values
    score as the fallback. With a `vocabulary` (channel: GA4's groups, from the dbt seed) only its
    entries can be categories, listed in its order, so a group's code does not depend on the
    data; otherwise the most frequent value comes first, in its most frequent spelling. Missing
    values, and values longer than MAX_CATEGORY_LENGTH, do not count.
    """
    fallback = field.fallback
    if fallback is None:
        raise ValueError(f"categorical input field {field.name!r} needs a fallback")
    key = category_key if field.match_by_key else str
    spellings: dict[str, Counter[str]] = {}
    for value in values:
        if isinstance(value, str) and 0 < len(value) <= MAX_CATEGORY_LENGTH:
            spellings.setdefault(key(value), Counter())[value] += 1
    counts = {k: spelled.total() for k, spelled in spellings.items()}
    allowed = None if vocabulary is None else {key(v) for v in vocabulary}
    frequent = sorted(
        (
            k
            for k, n in counts.items()
            if n >= MIN_CATEGORY_LEADS and k != key(fallback) and (allowed is None or k in allowed)
        ),
        key=lambda k: (-counts[k], k),
    )
    kept = frequent[: (field.max_categories or len(frequent) + 1) - 1]
    if vocabulary is None:
        return [*(spellings[k].most_common(1)[0][0] for k in kept), fallback]
    chosen = {*kept, key(fallback)}
    in_order = [v for v in vocabulary if key(v) in chosen]
    return in_order if key(fallback) in allowed else [*in_order, fallback]  # type: ignore[operator]


def feature_matrix(
    columns: Mapping[str, Sequence[object] | np.ndarray],
    features: Sequence[Feature],
    categories: Mapping[str, Sequence[str]],
) -> np.ndarray:
    """The model matrix (rows x features, float32) from input-field columns.

    Missing optional inputs may be absent from `columns`, None or NaN: XGBoost treats them as
    missing, exactly as training does.
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
            values = columns.get(feature.name)
            matrix[:, j] = (
                np.nan
                if values is None
                else encode_categories(
                    values, categories[feature.name], _categorical_field(feature)
                )
            )
        elif feature.compute is not None:
            matrix[:, j] = feature.compute(numeric)
        else:
            matrix[:, j] = numeric[feature.name]
    return matrix


class RowEncoder:
    """One model's `feature_values`, with its category lookups prepared once: the scoring
    service keeps one per loaded model, so a single lead costs no per-request set-up."""

    def __init__(self, features: Sequence[Feature], categories: Mapping[str, Sequence[str]]):
        self._numeric = tuple(f.name for f in INPUT_FIELDS if f.kind != "category")
        # Per feature: (name, index, fallback code, match by key) for a categorical one,
        # (name, compute or None) for a numeric one.
        self._steps: list[tuple[Any, ...]] = []
        for feature in features:
            if feature.kind == "categorical":
                field = _categorical_field(feature)
                index, fallback = _category_codes(tuple(categories[feature.name]), field.name)
                self._steps.append((feature.name, index, fallback, field.match_by_key))
            else:
                self._steps.append((feature.name, feature.compute))

    def __call__(self, values: Mapping[str, object]) -> list[float]:
        numeric: dict[str, float] = {}
        for name in self._numeric:
            value = values.get(name)
            numeric[name] = math.nan if value is None else float(value)  # type: ignore[arg-type]
        row = []
        for step in self._steps:
            if len(step) == 4:
                name, index, fallback, by_key = step
                row.append(_code(values.get(name), index, fallback, by_key))
            elif step[1] is not None:
                row.append(step[1](numeric))
            else:
                row.append(numeric[step[0]])
        return row


def feature_values(
    values: Mapping[str, object],
    features: Sequence[Feature],
    categories: Mapping[str, Sequence[str]],
) -> list[float]:
    """One lead's model row as Python floats, from its input values: the same numbers as
    `feature_matrix` gives for that lead once stored as float32 (the same `compute`, on Python
    floats), in about a microsecond instead of a dozen, which matters for the scoring service's
    single lead (which keeps a `RowEncoder` per model)."""
    return RowEncoder(features, categories)(values)


def feature_row(
    values: Mapping[str, object],
    features: Sequence[Feature],
    categories: Mapping[str, Sequence[str]],
) -> np.ndarray:
    """`feature_values` as a 1 x features float32 matrix."""
    return np.array([feature_values(values, features, categories)], dtype=np.float32)
