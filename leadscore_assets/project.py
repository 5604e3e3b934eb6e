"""The dbt project, as dagster-dbt sees it.

dagster-dbt builds assets from the manifest at import time. `prepare_if_dev()` only parses under
`dagster dev`; the CLI, tests and CI call `prepare_manifest()` (or `leadscore prepare`) first.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

from dagster_dbt import DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
CHANNEL_GROUPS_SEED = DBT_PROJECT_DIR / "seeds" / "channel_groups.csv"

# dbt is installed beside this interpreter; make it findable when the venv is not activated
# (dagster-dbt looks the `dbt` executable up on PATH).
_INTERPRETER_BIN = str(Path(sys.executable).parent)
if _INTERPRETER_BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = os.pathsep.join([_INTERPRETER_BIN, os.environ.get("PATH", "")])

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR)
dbt_project.prepare_if_dev()


def prepare_manifest() -> Path:
    """Parse the dbt project into target/manifest.json (no warehouse connection needed)."""
    dbt_project.preparer.prepare(dbt_project)
    return dbt_project.manifest_path


def channel_groups() -> list[str]:
    """The channel categories a model learns: the dbt seed is their single source."""
    with CHANNEL_GROUPS_SEED.open(newline="") as handle:
        return [row["channel"] for row in csv.DictReader(handle)]
