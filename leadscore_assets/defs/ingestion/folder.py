"""The landing folder: which files are there, their digest, and the quarantine for bad ones."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from leadscore_assets.defs.ingestion.schema import LANDING_TABLES

DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet")
# Files still being written by an uploader or copy tool.
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".download", "~")
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


def tables_without_files(files: Sequence[LandingFile]) -> list[str]:
    """Tables no file provides: loading needs at least one file per table."""
    return [t for t in LANDING_TABLES if not any(f.table == t for f in files)]


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
