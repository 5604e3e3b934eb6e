"""Deterministic synthetic raw exports with a documented conversion model (docs/synthetic_data.md).

The exports look like what a marketing team has: GA4 sessions (one row per session), CRM
contacts and CRM deals. Conversion follows a latent model in which engagement, page depth,
returning visits and channel carry signal, plus unobserved noise, so a model has something real to
learn and a known ceiling. Everything is vectorised numpy/pyarrow: 1M leads in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from leadscore_assets.defs.ingestion.schema import DEAL_STAGES
from leadscore_core.features import ENGAGED_SESSION_SECONDS, FALLBACK_CHANNEL

WINDOW_START = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW_DAYS = 300
DAY = 86_400

# channel group: (share of first touches, intent shift, conversion log-odds shift)
CHANNEL_MODEL: dict[str, tuple[float, float, float]] = {
    "Organic Search": (0.28, 0.0, 0.0),
    "Paid Search": (0.17, 0.2, 0.3),
    "Direct": (0.16, 0.1, 0.2),
    "Referral": (0.08, 0.3, 0.5),
    "Organic Social": (0.09, -0.3, -0.5),
    "Paid Social": (0.08, -0.4, -0.7),
    "Email": (0.06, 0.4, 0.9),
    "Display": (0.06, -0.5, -0.9),
    FALLBACK_CHANNEL: (0.02, -0.2, -0.3),
}
CHANNELS = np.array(list(CHANNEL_MODEL), dtype=object)
_SHARE, _INTENT, _CONVERSION = (np.array(v) for v in zip(*CHANNEL_MODEL.values(), strict=True))

DEVICES = np.array(["desktop", "mobile", "tablet"], dtype=object)
COUNTRIES = np.array(
    [
        "United States",
        "United Kingdom",
        "Germany",
        "France",
        "Canada",
        "India",
        "Brazil",
        "Australia",
    ],
    dtype=object,
)


@dataclass(frozen=True)
class LatentModel:
    """Coefficients of the true conversion log-odds (see docs/synthetic_data.md)."""

    intercept: float = -6.8
    engaged_sessions: float = 1.7  # x log1p(engaged sessions)
    page_views: float = 0.7  # x log1p(page views)
    returning: float = 0.5  # more than one visit, ever
    engagement_minutes: float = 0.6  # x log1p(total engagement minutes)
    noise_sd: float = 0.8  # unobserved fit (company size, budget, timing)


@dataclass(frozen=True)
class SyntheticExport:
    sessions: pa.Table
    contacts: pa.Table
    deals: pa.Table
    # Per lead: the true probability, the outcome and the pre-outcome features. Never written to
    # landing/; tests and docs/synthetic_data.md use it.
    truth: pa.Table


def _timestamps(seconds: np.ndarray) -> pa.Array:
    return pa.array(seconds.astype("int64"), type=pa.timestamp("s", tz="UTC"))


def _labels(values: np.ndarray, codes: np.ndarray) -> pa.Array:
    """values[codes] as an Arrow string array, without a Python string object per row."""
    return pc.take(pa.array(list(values), pa.string()), pa.array(codes))


def _group_positions(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows expanded by `counts`: the owning group of each row and its position in the group."""
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(counts.sum()) - starts[owner]


def _within_group_cumsum(values: np.ndarray, owner: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each group (rows are grouped contiguously)."""
    total = np.cumsum(values)
    group_start = (
        total[(np.arange(len(values)) - position)] - values[np.arange(len(values)) - position]
    )
    return total - group_start


def _session_rows(
    rng: np.random.Generator,
    owner: np.ndarray,
    position: np.ndarray,
    intent: np.ndarray,
    reading_depth: np.ndarray,
    first_channel: np.ndarray,
    start_seconds: np.ndarray,
    mean_gap_days: float,
) -> dict[str, np.ndarray]:
    """Session-level behaviour: intent drives bounces, pages and time; reading depth only time."""
    n = len(owner)
    z = intent[owner]
    bounced = rng.random(n) < 1 / (1 + np.exp(0.5 + 0.8 * z))
    engagement = np.where(
        bounced,
        rng.uniform(0, ENGAGED_SESSION_SECONDS, n),
        rng.lognormal(np.log(45) + 0.45 * z + 0.6 * reading_depth[owner], 0.9),
    )
    page_views = np.where(bounced, 1, 1 + rng.poisson(np.exp(0.7 + 0.3 * z)))
    same_channel = (position == 0) | (rng.random(n) < 0.6)
    channel = np.where(same_channel, first_channel[owner], rng.choice(len(CHANNELS), n, p=_SHARE))
    gaps = np.where(position == 0, 0.0, 1_800 + rng.exponential(mean_gap_days * DAY, n))
    start = start_seconds[owner] + _within_group_cumsum(gaps, owner, position)
    return {
        "engagement": np.round(engagement, 1),
        "page_views": page_views,
        "channel": channel,
        "start": np.floor(start),
    }


def generate(
    n_leads: int, seed: int, *, first_contact_id: int = 1, model: LatentModel = LatentModel()
) -> SyntheticExport:
    """Generate `n_leads` CRM contacts with their web sessions and deals. Same seed, same data."""
    if n_leads < 1:
        raise ValueError("n_leads must be at least 1")
    rng = np.random.default_rng(seed)
    window_start = WINDOW_START.timestamp()

    # --- leads: channel, latent intent, visits
    first_channel = rng.choice(len(CHANNELS), n_leads, p=_SHARE)
    intent = rng.normal(0, 1, n_leads) + _INTENT[first_channel]
    # How closely a lead reads: visible in engagement time, not in visit or page counts.
    reading_depth = rng.normal(0, 1, n_leads)
    visited_before_window = rng.random(n_leads) < 0.15
    prior_visits = np.where(visited_before_window, 1 + rng.geometric(0.5, n_leads), 0)
    pre_sessions = np.minimum(1 + rng.poisson(np.exp(0.1 + 0.5 * intent)), 60)
    first_seen = window_start + rng.uniform(0, (WINDOW_DAYS - 45) * DAY, n_leads)

    owner, position = _group_positions(pre_sessions)
    pre = _session_rows(rng, owner, position, intent, reading_depth, first_channel, first_seen, 4.0)
    engaged = np.bincount(owner, pre["engagement"] > ENGAGED_SESSION_SECONDS, n_leads)
    page_views = np.bincount(owner, pre["page_views"], n_leads)
    engagement_minutes = np.bincount(owner, pre["engagement"], n_leads) / 60
    last_seen = pre["start"][np.cumsum(pre_sessions) - 1]

    # --- the latent conversion model
    log_odds = (
        model.intercept
        + model.engaged_sessions * np.log1p(engaged)
        + model.page_views * np.log1p(page_views)
        + model.returning * ((pre_sessions > 1) | visited_before_window)
        + model.engagement_minutes * np.log1p(engagement_minutes)
        + _CONVERSION[first_channel]
        + rng.normal(0, model.noise_sd, n_leads)
    )
    true_probability = 1 / (1 + np.exp(-log_odds))
    won = rng.random(n_leads) < true_probability

    # --- deals: every winner has a closed-won deal; others are lost, open or never had one
    fate = rng.random(n_leads)
    stage = np.where(
        won,
        DEAL_STAGES.won,
        np.where(fate < 0.45, DEAL_STAGES.lost, np.where(fate < 0.55, DEAL_STAGES.open, "")),
    )
    has_deal = stage != ""
    closed = (stage == DEAL_STAGES.won) | (stage == DEAL_STAGES.lost)
    closed_at = last_seen + 3_600 + rng.exponential(10 * DAY, n_leads)

    # --- activity after the outcome (customers onboarding): must never reach the features
    post_count = np.where(
        won & (rng.random(n_leads) < 0.7),
        1 + rng.poisson(4, n_leads),
        np.where(
            (stage == DEAL_STAGES.lost) & (rng.random(n_leads) < 0.15),
            1 + rng.poisson(1, n_leads),
            0,
        ),
    )
    post_owner, post_position = _group_positions(post_count)
    post = _session_rows(
        rng,
        post_owner,
        post_position,
        intent + 1.5,
        reading_depth,
        first_channel,
        closed_at + 3_600,
        3.0,
    )
    post["channel"] = np.full(len(post_owner), list(CHANNEL_MODEL).index("Direct"))

    # --- anonymous visitors who never became contacts
    n_anonymous = n_leads // 5
    anon_sessions = 1 + rng.poisson(0.5, n_anonymous)
    anon_owner, anon_position = _group_positions(anon_sessions)
    anon_intent = rng.normal(-1, 1, n_anonymous)
    anon_channel = rng.choice(len(CHANNELS), n_anonymous, p=_SHARE)
    anon_first = window_start + rng.uniform(0, WINDOW_DAYS * DAY, n_anonymous)
    anon = _session_rows(
        rng,
        anon_owner,
        anon_position,
        anon_intent,
        np.zeros(n_anonymous),
        anon_channel,
        anon_first,
        6.0,
    )

    # --- identifiers
    n_visitors = n_leads + n_anonymous
    visitor_random = rng.integers(100_000_000, 1_000_000_000, n_visitors)
    visitor_first = np.concatenate([first_seen, anon_first]).astype("int64")
    visitor_ids = pc.binary_join_element_wise(
        pc.cast(pa.array(visitor_random), pa.string()),
        pc.cast(pa.array(visitor_first), pa.string()),
        ".",
    )
    contact_ids = np.arange(first_contact_id, first_contact_id + n_leads, dtype=np.int64)

    # --- sessions table: pre-outcome, post-outcome, anonymous, ordered by session start
    session_owner = np.concatenate([owner, post_owner, n_leads + anon_owner])
    session_number = np.concatenate(
        [
            prior_visits[owner] + position + 1,
            prior_visits[post_owner] + pre_sessions[post_owner] + post_position + 1,
            anon_position + 1,
        ]
    )
    parts = (pre, post, anon)
    start = np.concatenate([p["start"] for p in parts])
    n_sessions = len(session_owner)
    device = rng.choice(3, n_sessions, p=[0.55, 0.4, 0.05])
    country = rng.integers(0, len(COUNTRIES), n_sessions)
    # A stable sort by the (whole-second) start, as Arrow's sort_indices on the timestamp column
    # would order the finished table, applied to the columns before they become Arrow arrays:
    # string columns are then built once, in order, by taking from their few distinct values.
    start_seconds = start.astype("int64")
    order = np.argsort(start_seconds, kind="stable")
    sessions = pa.table(
        {
            "user_pseudo_id": pc.take(visitor_ids, pa.array(session_owner[order])),
            "ga_session_id": start_seconds[order],
            "ga_session_number": session_number.astype("int64")[order],
            "session_start": pa.array(start_seconds[order], type=pa.timestamp("s", tz="UTC")),
            "engagement_time_seconds": np.concatenate([p["engagement"] for p in parts])[order],
            "page_views": np.concatenate([p["page_views"] for p in parts]).astype("int64")[order],
            "session_default_channel_group": _labels(
                CHANNELS, np.concatenate([p["channel"] for p in parts])[order]
            ),
            "device_category": _labels(DEVICES, device[order]),
            "country": _labels(COUNTRIES, country[order]),
        }
    )

    emails = pc.binary_join_element_wise(
        "lead", pc.cast(pa.array(contact_ids), pa.string()), "@example.com", ""
    )
    contacts = pa.table(
        {
            "contact_id": contact_ids,
            "email": emails,
            "visitor_id": visitor_ids.slice(0, n_leads),
            "created_at": _timestamps(first_seen + rng.uniform(30, 900, n_leads)),
        }
    )
    deal_rows = np.flatnonzero(has_deal)
    deals = pa.table(
        {
            "deal_id": contact_ids[deal_rows] + 500_000_000,
            "contact_id": contact_ids[deal_rows],
            "stage": pa.array(stage[deal_rows], pa.string()),
            "amount": np.round(rng.lognormal(np.log(8_000), 0.7, len(deal_rows)), 2),
            "closed_at": pa.array(
                closed_at[deal_rows].astype("int64"),
                type=pa.timestamp("s", tz="UTC"),
                mask=~closed[deal_rows],
            ),
        }
    )
    first_start = pre["start"][np.cumsum(pre_sessions) - pre_sessions]
    truth = pa.table(
        {
            "contact_id": contact_ids,
            "true_probability": true_probability,
            "is_won": won,
            # What a point-in-time feature mart must reproduce: pre-outcome activity only.
            "sessions": pre_sessions,
            "engaged_sessions": engaged.astype("int64"),
            "page_views": page_views.astype("int64"),
            "is_first_visit": (pre_sessions == 1) & ~visited_before_window,
            "channel": pa.array(CHANNELS[first_channel], pa.string()),
            "total_engagement_seconds": np.bincount(owner, pre["engagement"], n_leads),
            "days_active_span": (last_seen - first_start) / DAY,
            # One bit per channel, OR-ed over each lead's (contiguous) sessions, then counted.
            "distinct_channels": np.bitwise_count(
                np.bitwise_or.reduceat(
                    np.left_shift(1, pre["channel"]), np.cumsum(pre_sessions) - pre_sessions
                )
            ).astype("int64"),
        }
    )
    return SyntheticExport(sessions, contacts, deals, truth)
