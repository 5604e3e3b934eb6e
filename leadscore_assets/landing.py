"""Landing files -> DuckDB schema `raw`, all or nothing.

Users drop CSV or Parquet exports into `landing/` (docs/landing_schema.md). Every file is read
and type-checked before anything is replaced; the raw tables are then swapped in one transaction,
so a bad file leaves the previously loaded data exactly as it was. When several files hold the
same key (a re-export), the newest file wins.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from leadscore_assets.generator import LANDING_TABLES


@dataclass(frozen=True)
class Column:
    name: str
    duckdb_type: str
    required: bool = True
    not_null: bool = False


# The landing schema: table -> columns. Optional columns may be absent (loaded as NULL).
LANDING_SCHEMA: dict[str, tuple[Column, ...]] = {
    "ga4_sessions": (
        Column("user_pseudo_id", "VARCHAR", not_null=True),
        Column("ga_session_id", "BIGINT", not_null=True),
        Column("ga_session_number", "INTEGER", not_null=True),
        Column("session_start", "TIMESTAMPTZ", not_null=True),
        Column("engagement_time_seconds", "DOUBLE"),
        Column("page_views", "INTEGER"),
        Column("session_default_channel_group", "VARCHAR"),
        Column("device_category", "VARCHAR", required=False),
        Column("country", "VARCHAR", required=False),
    ),
    "crm_contacts": (
        Column("contact_id", "BIGINT", not_null=True),
        Column("email", "VARCHAR"),
        Column("visitor_id", "VARCHAR"),
        Column("created_at", "TIMESTAMPTZ", not_null=True),
    ),
    "crm_deals": (
        Column("deal_id", "BIGINT", not_null=True),
        Column("contact_id", "BIGINT", not_null=True),
        Column("stage", "VARCHAR", not_null=True),
        Column("amount", "DOUBLE", required=False),
        Column("closed_at", "TIMESTAMPTZ", required=False),
    ),
}
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "ga4_sessions": ("user_pseudo_id", "ga_session_id"),
    "crm_contacts": ("contact_id",),
    "crm_deals": ("deal_id",),
}
DEAL_STAGES = ("closed_won", "closed_lost", "open")
DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet")
# Files still being written by an uploader or copy tool.
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".download", "~")
RAW_SCHEMA = "raw"
QUARANTINE_DIR_NAME = "quarantine"


class LandingFileError(ValueError):
    """A landing file that cannot be loaded; `path` names it, `problem` says why."""

    def __init__(self, path: Path, problem: str):
        super().__init__(f"{path.name}: {problem}")
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class LandingFile:
    path: Path
    table: str
    size: int
    mtime_ns: int

    @property
    def fingerprint(self) -> str:
        """Name, size and modification time: what the sensor and lineage compare."""
        return f"{self.path.name}:{self.size}:{self.mtime_ns}"


def is_partial(path: Path) -> bool:
    return path.name.startswith(".") or path.name.endswith(PARTIAL_SUFFIXES)


def table_for(path: Path) -> str | None:
    """The raw table a file belongs to, by name prefix (`crm_deals_2026-11.csv` -> crm_deals)."""
    if is_partial(path) or not path.name.endswith(DATA_SUFFIXES):
        return None
    return next((t for t in LANDING_TABLES if path.name.startswith(t)), None)


def discover(landing_dir: Path) -> list[LandingFile]:
    """Complete data files directly in `landing_dir`, oldest first (newest wins on duplicates)."""
    if not landing_dir.is_dir():
        return []
    found = []
    for path in landing_dir.iterdir():
        table = table_for(path)
        if path.is_file() and table:
            stat = path.stat()
            found.append(LandingFile(path, table, stat.st_size, stat.st_mtime_ns))
    return sorted(found, key=lambda f: (f.mtime_ns, f.path.name))


def unrecognised(landing_dir: Path) -> list[str]:
    """Files that are neither data for a known table nor partial uploads: reported, not loaded."""
    if not landing_dir.is_dir():
        return []
    return sorted(
        p.name
        for p in landing_dir.iterdir()
        if p.is_file() and not is_partial(p) and table_for(p) is None
    )


def files_digest(files: Sequence[LandingFile]) -> str:
    return hashlib.sha256("\n".join(f.fingerprint for f in files).encode()).hexdigest()


def _reader(path: Path) -> str:
    quoted = str(path).replace("'", "''")
    if path.name.endswith(".parquet"):
        return f"read_parquet('{quoted}')"
    return f"read_csv('{quoted}', all_varchar = true, header = true)"


def _stage_file(conn: duckdb.DuckDBPyConnection, file: LandingFile, staged_name: str) -> int:
    """Copy one file into a temp table of typed columns, or raise LandingFileError saying why."""
    try:
        conn.execute(f"CREATE TEMP TABLE {staged_name}_text AS SELECT * FROM {_reader(file.path)}")
    except duckdb.Error as exc:
        raise LandingFileError(file.path, f"unreadable: {str(exc).splitlines()[0]}") from None
    present = {
        row[0].lower(): row[0] for row in conn.execute(f"DESCRIBE {staged_name}_text").fetchall()
    }
    columns = LANDING_SCHEMA[file.table]
    missing = [c.name for c in columns if c.required and c.name not in present]
    if missing:
        raise LandingFileError(
            file.path, f"missing required column(s) {', '.join(missing)} for table {file.table}"
        )
    rows = conn.execute(f"SELECT count(*) FROM {staged_name}_text").fetchone()[0]
    if rows == 0:
        raise LandingFileError(file.path, "has a header but no rows")

    checks = []
    for column in columns:
        if column.name not in present:
            continue
        source = f'"{present[column.name]}"'
        checks.append(
            (
                column,
                f"count(*) FILTER (WHERE {source} IS NOT NULL AND "
                f"TRY_CAST({source} AS {column.duckdb_type}) IS NULL)",
                "not a valid " + column.duckdb_type,
            )
        )
        if column.not_null:
            checks.append((column, f"count(*) FILTER (WHERE {source} IS NULL)", "empty"))
    if file.table == "crm_deals":
        stages = ", ".join(f"'{s}'" for s in DEAL_STAGES)
        checks.append(
            (
                next(c for c in columns if c.name == "stage"),
                f'count(*) FILTER (WHERE "{present["stage"]}" NOT IN ({stages}))',
                f"not one of {', '.join(DEAL_STAGES)}",
            )
        )
    counts = conn.execute(
        f"SELECT {', '.join(sql for _, sql, _ in checks)} FROM {staged_name}_text"
    ).fetchone()
    problems = [
        f"column {column.name}: {count} value(s) {what}"
        for (column, _, what), count in zip(checks, counts, strict=True)
        if count
    ]
    if problems:
        raise LandingFileError(file.path, "; ".join(problems))

    typed = ", ".join(
        f'CAST("{present[c.name]}" AS {c.duckdb_type}) AS {c.name}'
        if c.name in present
        else f"CAST(NULL AS {c.duckdb_type}) AS {c.name}"
        for c in columns
    )
    source_name = file.path.name.replace("'", "''")
    conn.execute(
        f"CREATE TEMP TABLE {staged_name} AS SELECT {typed}, '{source_name}' AS _source_file "
        f"FROM {staged_name}_text"
    )
    conn.execute(f"DROP TABLE {staged_name}_text")
    return rows


def tables_without_files(files: Sequence[LandingFile]) -> list[str]:
    """Tables no file provides: loading needs at least one file per table."""
    return [t for t in LANDING_TABLES if not any(f.table == t for f in files)]


def load_landing(warehouse: Path | str, files: Sequence[LandingFile]) -> dict[str, int]:
    """Replace raw.<table> for every table from `files`; returns row counts per table.

    All files are staged and checked first; the swap happens in one transaction. On any
    LandingFileError nothing in the warehouse changes.
    """
    empty = tables_without_files(files)
    if empty:
        raise ValueError(f"no landing file for table(s) {', '.join(empty)}")
    by_table: dict[str, list[LandingFile]] = {t: [] for t in LANDING_TABLES}
    for file in files:
        by_table[file.table].append(file)

    with duckdb.connect(str(warehouse)) as conn:
        staged: dict[str, list[str]] = {}
        for table, table_files in by_table.items():
            staged[table] = []
            for index, file in enumerate(table_files):
                name = f"staged_{table}_{index}"
                _stage_file(conn, file, name)
                staged[table].append(name)
        conn.execute("BEGIN TRANSACTION")
        try:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
            for table, names in staged.items():
                # Later files (newer exports) win when a key appears more than once.
                union = " UNION ALL ".join(
                    f"SELECT *, {order} AS _file_order FROM {name}"
                    for order, name in enumerate(names)
                )
                keys = ", ".join(PRIMARY_KEYS[table])
                conn.execute(
                    f"CREATE OR REPLACE TABLE {RAW_SCHEMA}.{table} AS "
                    f"SELECT * EXCLUDE (_file_order) FROM ({union}) "
                    f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY _file_order DESC) = 1"
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return {
            table: conn.execute(f"SELECT count(*) FROM {RAW_SCHEMA}.{table}").fetchone()[0]
            for table in LANDING_TABLES
        }


def quarantine(error: LandingFileError, landing_dir: Path) -> Path:
    """Move a bad file out of the way with a reason file beside it, so the next run (and the
    sensor) does not trip over it again and a person can see what was wrong."""
    target_dir = landing_dir / QUARANTINE_DIR_NAME
    target_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = target_dir / f"{stamp}_{error.path.name}"
    shutil.move(str(error.path), target)
    target.with_name(target.name + ".reason.txt").write_text(
        f"file: {error.path.name}\nquarantined_at: {stamp}\nproblem: {error.problem}\n"
    )
    return target


def landing_summary(files: Sequence[LandingFile]) -> Mapping[str, list[str]]:
    summary: dict[str, list[str]] = {t: [] for t in LANDING_TABLES}
    for file in files:
        summary[file.table].append(file.path.name)
    return summary
