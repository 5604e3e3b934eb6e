"""The lead scores snapshot: every open lead's score, published by the pipeline beside the model.

Why SQLite (the standard library's sqlite3): the scoring API answers `GET /leads/{id}/score` with
one primary-key or index lookup in the file, without loading 80,000 rows into memory and without a
dependency beyond the standard library (Parquet or Arrow would need pyarrow in the API, and a
full load per publish). The pipeline writes the whole file in a fraction of a second.

Publishing is atomic: the writer builds the file under a temporary name beside the target, fsyncs
it and renames it over the target, so a reader opens either the previous snapshot or the new one,
never half of one. A reader keeps reading the file it opened (its inode) until it opens the next;
a failed or killed write leaves the published snapshot untouched (the temporary file is removed,
or, after a kill, left as a `.lead_scores.sqlite.*.tmp` file that no reader looks at).

Contact ids are text everywhere (CRM ids may be numbers, UUIDs or Salesforce ids); integer ids
are stored as their decimal text. Emails are looked up case-insensitively (ASCII letters).
"""

from __future__ import annotations

import math
import numbers
import os
import secrets
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic_core import from_json, to_json

from leadscore_core.features import MAX_ID_LENGTH
from leadscore_core.settings import DEFAULT_HIGH_THRESHOLD
from leadscore_core.tiers import sales_tiers, score_labels, tier_letters

if TYPE_CHECKING:
    from leadscore_core.artifact import LoadedModel

SCHEMA_VERSION = 1
# The columns of table `lead_scores`, in order: what every row of a snapshot holds.
COLUMNS: tuple[str, ...] = (
    "contact_id",
    "email",
    "score",
    "label",
    "tier",
    "reasons",
    "model_version",
    "model_sha256",
    "scored_at",
    "features_as_of",
)
_TABLES = f"""
CREATE TABLE lead_scores (
    contact_id TEXT PRIMARY KEY NOT NULL
        CHECK (length(contact_id) BETWEEN 1 AND {MAX_ID_LENGTH}),
    email TEXT,
    score REAL NOT NULL CHECK (score >= 0 AND score <= 1),
    label TEXT NOT NULL CHECK (label IN ('high', 'low')),
    tier TEXT NOT NULL,
    reasons TEXT NOT NULL,
    model_version TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    scored_at TEXT NOT NULL,
    features_as_of TEXT
) WITHOUT ROWID;
CREATE TABLE snapshot (
    schema_version INTEGER NOT NULL,
    snapshot_id TEXT NOT NULL,
    model_version TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    high_threshold REAL NOT NULL,
    row_count INTEGER NOT NULL,
    scored_at TEXT NOT NULL,
    written_at TEXT NOT NULL
);
"""
# Built after the rows are in: one sort instead of 80,000 index updates.
_EMAIL_INDEX = "CREATE INDEX lead_scores_by_email ON lead_scores (email COLLATE NOCASE)"
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM lead_scores"


class SnapshotFileError(ValueError):
    """The file is not a lead scores snapshot this code can read; the message says why."""


@dataclass(frozen=True)
class ScoringRun:
    """Which model scored the leads, when, and the threshold their label and tier follow."""

    model_version: str
    model_sha256: str
    scored_at: datetime
    high_threshold: float = DEFAULT_HIGH_THRESHOLD

    @classmethod
    def of(
        cls,
        model: LoadedModel,
        *,
        high_threshold: float = DEFAULT_HIGH_THRESHOLD,
        scored_at: datetime | None = None,
    ) -> ScoringRun:
        return cls(
            model_version=model.version,
            model_sha256=model.file_sha256,
            scored_at=scored_at or datetime.now(UTC),
            high_threshold=high_threshold,
        )


@dataclass(frozen=True)
class ScoredLeads:
    """Validated rows (in `COLUMNS` order) of one scoring run, ready to publish or to load into
    a warehouse table; only `scored_leads` makes them."""

    run: ScoringRun
    rows: list[tuple[Any, ...]]


@dataclass(frozen=True)
class SnapshotInfo:
    """The snapshot's own record: which run wrote it, how many leads, and when."""

    snapshot_id: str
    model_version: str
    model_sha256: str
    high_threshold: float
    row_count: int
    scored_at: str
    written_at: str


@dataclass(frozen=True)
class LeadScore:
    """One lead's published score. Timestamps are ISO 8601 text as stored."""

    contact_id: str
    email: str | None
    score: float
    label: str
    tier: str
    reasons: list[dict[str, Any]]
    model_version: str
    model_sha256: str
    scored_at: str
    features_as_of: str | None


def _iso(value: datetime) -> str:
    """ISO 8601 with an offset; a naive timestamp is taken as UTC (DuckDB's TIMESTAMP is)."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _contact_id(value: object, row: int) -> str:
    kind = type(value)  # exact types first: the ABC check costs more than the rest
    if kind is str:
        text = value
    elif (kind is int or (kind is not bool and isinstance(value, numbers.Integral))) and (
        int(value) >= 0
    ):
        text = str(int(value))
    else:
        raise ValueError(
            f"contact id at row {row} must be text or a non-negative integer, got {value!r}"
        )
    if not text.strip() or len(text) > MAX_ID_LENGTH:
        raise ValueError(
            f"contact id at row {row} must be 1 to {MAX_ID_LENGTH} characters, got {text!r}"
        )
    return text


def _email(value: object, row: int) -> str | None:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None  # pandas writes a missing text value as NaN
    raise ValueError(f"email at row {row} must be text or missing, got {value!r}")


def _features_as_of(value: object, row: int) -> str | None:
    if value is None or value != value:  # None, NaN or pandas' NaT
        return None
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, str):
        return value
    raise ValueError(f"features_as_of at row {row} must be a timestamp or missing, got {value!r}")


def _formatted(cache: dict[object, str | None], value: object, row: int) -> str | None:
    try:
        return cache[value]
    except KeyError:
        cache[value] = formatted = _features_as_of(value, row)
        return formatted
    except TypeError:  # not hashable: rejected by _features_as_of, naming the row
        return _features_as_of(value, row)


def _checked_scores(scores: Sequence[float] | np.ndarray, contact_ids: Sequence[object]) -> list:
    values = np.asarray(scores, dtype=np.float64)
    bad = ~(np.isfinite(values) & (values >= 0) & (values <= 1))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{int(bad.sum())} score(s) are not probabilities in [0, 1]; the first is "
            f"{float(values[row])!r} for contact {contact_ids[row]!r} (row {row})"
        )
    return values.tolist()


def scored_leads(
    run: ScoringRun,
    *,
    contact_ids: Sequence[object],
    emails: Sequence[object],
    scores: Sequence[float] | np.ndarray,
    reasons: Sequence[Sequence[Mapping[str, Any]]],
    features_as_of: Sequence[object],
) -> ScoredLeads:
    """Validate one scoring run's columns (one entry per lead) and derive label and tier.

    `reasons` are the explanation code's lists of {feature, value, contribution, text}, stored
    as JSON. Raises ValueError naming the first offending lead: a score that is not a finite
    probability, a contact id that is missing, too long or repeated, a malformed email or
    timestamp, or columns of different lengths.
    """
    columns = {
        "emails": emails,
        "scores": scores,
        "reasons": reasons,
        "features_as_of": features_as_of,
    }
    lengths = {name: len(column) for name, column in columns.items()}
    if any(length != len(contact_ids) for length in lengths.values()):
        raise ValueError(f"{len(contact_ids)} contact ids but column lengths {lengths}")
    checked_scores = _checked_scores(scores, contact_ids)
    labels = score_labels(checked_scores, run.high_threshold)
    tiers = tier_letters(checked_scores, sales_tiers(run.high_threshold))
    scored_at = _iso(run.scored_at)
    # Open leads mostly share one cut-off: each distinct timestamp is formatted once.
    formatted_as_of: dict[object, str | None] = {}
    rows = []
    seen: set[str] = set()
    for row, contact_id in enumerate(contact_ids):
        text_id = _contact_id(contact_id, row)
        if text_id in seen:
            raise ValueError(f"contact id {text_id!r} appears more than once (again at row {row})")
        seen.add(text_id)
        rows.append(
            (
                text_id,
                _email(emails[row], row),
                checked_scores[row],
                labels[row],
                tiers[row],
                to_json(reasons[row], inf_nan_mode="null").decode(),
                run.model_version,
                run.model_sha256,
                scored_at,
                _formatted(formatted_as_of, features_as_of[row], row),
            )
        )
    return ScoredLeads(run, rows)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_snapshot(path: str | os.PathLike[str], scored: ScoredLeads) -> SnapshotInfo:
    """Publish `scored` as the snapshot at `path`, atomically (module docstring)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    run = scored.run
    info = SnapshotInfo(
        snapshot_id=secrets.token_hex(16),
        model_version=run.model_version,
        model_sha256=run.model_sha256,
        high_threshold=run.high_threshold,
        row_count=len(scored.rows),
        scored_at=_iso(run.scored_at),
        written_at=datetime.now(UTC).isoformat(),
    )
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    os.close(descriptor)
    try:
        with closing(sqlite3.connect(temporary, isolation_level=None)) as connection:
            # A private file until the rename: no journal, no syncs; one fsync below instead.
            connection.execute("PRAGMA journal_mode = OFF")
            connection.execute("PRAGMA synchronous = OFF")
            connection.executescript(_TABLES)
            connection.execute("BEGIN")
            connection.executemany(
                f"INSERT INTO lead_scores VALUES ({', '.join('?' * len(COLUMNS))})", scored.rows
            )
            connection.execute(_EMAIL_INDEX)
            connection.execute(
                "INSERT INTO snapshot VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    SCHEMA_VERSION,
                    info.snapshot_id,
                    info.model_version,
                    info.model_sha256,
                    info.high_threshold,
                    info.row_count,
                    info.scored_at,
                    info.written_at,
                ),
            )
            connection.execute("COMMIT")
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        # mkstemp creates 0600; the published file is read by other processes and users.
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
        _fsync_directory(target.parent)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return info


def _lead_score(row: tuple[Any, ...]) -> LeadScore:
    values = dict(zip(COLUMNS, row, strict=True))
    values["reasons"] = from_json(values["reasons"])
    return LeadScore(**values)


class LeadScoresSnapshot:
    """One opened, validated snapshot file. Immutable in use: it keeps reading the file it opened
    even after a newer one is published over its path, so a lookup never mixes two snapshots."""

    def __init__(self, connection: sqlite3.Connection, info: SnapshotInfo) -> None:
        self._connection = connection
        self.info = info

    def by_contact_id(self, contact_id: str) -> LeadScore | None:
        row = self._connection.execute(f"{_SELECT} WHERE contact_id = ?", (contact_id,)).fetchone()
        return _lead_score(row) if row is not None else None

    def by_email(self, email: str) -> list[LeadScore]:
        """Every lead with this email, ignoring the case of ASCII letters, by contact id."""
        rows = self._connection.execute(
            f"{_SELECT} WHERE email = ? COLLATE NOCASE ORDER BY contact_id", (email,)
        ).fetchall()
        return [_lead_score(row) for row in rows]

    def __iter__(self) -> Iterator[LeadScore]:
        """Every lead, by contact id."""
        for row in self._connection.execute(f"{_SELECT} ORDER BY contact_id"):
            yield _lead_score(row)

    def __len__(self) -> int:
        return self.info.row_count

    def close(self) -> None:
        self._connection.close()


def _columns_of(connection: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]


def _validated_info(connection: sqlite3.Connection) -> SnapshotInfo:
    """Everything readers rely on, checked before the snapshot serves a single lookup."""
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    for table in ("lead_scores", "snapshot"):
        if table not in tables:
            raise SnapshotFileError(f"no table {table!r}: not a lead scores snapshot")
    if _columns_of(connection, "lead_scores") != list(COLUMNS):
        raise SnapshotFileError(
            f"table lead_scores has columns {_columns_of(connection, 'lead_scores')}, "
            f"expected {list(COLUMNS)}"
        )
    records = connection.execute("SELECT * FROM snapshot").fetchall()
    if len(records) != 1:
        raise SnapshotFileError(f"table snapshot must hold one row, holds {len(records)}")
    (schema_version, *fields) = records[0]
    if schema_version != SCHEMA_VERSION:
        raise SnapshotFileError(
            f"snapshot schema_version {schema_version!r} is not {SCHEMA_VERSION}"
        )
    info = SnapshotInfo(*fields)
    (rows,) = connection.execute("SELECT count(*) FROM lead_scores").fetchone()
    if rows != info.row_count:
        raise SnapshotFileError(f"snapshot records {info.row_count} rows but holds {rows}")
    (check,) = connection.execute("PRAGMA quick_check").fetchone()
    if check != "ok":
        raise SnapshotFileError(f"damaged snapshot file: {check}")
    return info


def open_snapshot(path: str | os.PathLike[str]) -> LeadScoresSnapshot:
    """Open a published snapshot read-only and validate it; raises FileNotFoundError when there
    is none, SnapshotFileError saying what is wrong with one that cannot be served."""
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(f"no lead scores snapshot at {target}")
    connection = sqlite3.connect(
        f"{target.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
    )
    try:
        info = _validated_info(connection)
    except sqlite3.DatabaseError as exc:
        connection.close()
        raise SnapshotFileError(f"not a readable snapshot: {exc}") from None
    except BaseException:
        connection.close()
        raise
    return LeadScoresSnapshot(connection, info)
