"""Where a model came from: code versions and content hashes for the audit trail."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_version(paths: Iterable[Path]) -> str:
    """A short content hash of source files (a folder stands for its Python files): the Dagster
    code version of the assets they define, so the UI marks downstream assets stale when the code
    changes."""
    files = {p for path in paths for p in (path.rglob("*.py") if path.is_dir() else [path])}
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.relative_to(REPO_ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def git_commit() -> str | None:
    """The checked-out commit ('-dirty' with uncommitted changes), in a git checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def dbt_model_versions(manifest_path: Path) -> dict[str, str]:
    """dbt's own checksum of every model's SQL, by model name."""
    manifest = json.loads(manifest_path.read_text())
    return {
        node["name"]: node["checksum"]["checksum"]
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "seed")
    }
