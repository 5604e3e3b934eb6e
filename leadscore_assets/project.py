"""The dbt project, as dagster-dbt sees it, and the vars it is always run with.

dagster-dbt builds assets from the manifest at import time. `leadscore prepare` (the CLI, the
Makefile, the tests) writes it to dbt_project/target/ before anything imports the definitions; that
is the only thing written into the checkout. Every `dbt build` writes its artifacts and logs under
the data directory (`$LEADSCORE_DATA_DIR/dbt/<run>/`).
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliResource, DbtProject

from leadscore_assets.defs.ingestion.schema import DEAL_STAGES
from leadscore_assets.settings import PipelineSettings
from leadscore_core.features import (
    CATEGORY_KEY_PATTERN,
    CONTACT_ATTRIBUTES,
    ENGAGED_SESSION_SECONDS,
    FALLBACK_CHANNEL,
    INPUT_FIELDS,
    InputField,
)

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
CHANNEL_GROUPS_SEED = DBT_PROJECT_DIR / "seeds" / "channel_groups.csv"
# dbt as installed beside this interpreter, whether or not its directory is on PATH.
DBT_EXECUTABLE = shutil.which("dbt", path=str(Path(sys.executable).parent)) or "dbt"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR)

# The mart's column type for each kind of input field (its contract; tests/test_definitions.py
# checks the yml against the same kinds).
MART_COLUMN_TYPES = {
    "count": "integer",
    "bool": "boolean",
    "category": "varchar",
    "seconds": "double precision",
    "days": "double precision",
}


def _contact_attribute(field: InputField) -> dict[str, str]:
    return {"name": field.name, "data_type": MART_COLUMN_TYPES[field.kind]}


def dbt_vars(settings: PipelineSettings) -> dict[str, Any]:
    """The constants the dbt project reads with `var()`, rendered from their Python definitions
    (features.py, the landing schema), plus where the DuckDB warehouse is (profiles.yml; its
    `postgres` target reads its connection from the LEADSCORE_POSTGRES_* variables instead)."""
    return {
        "warehouse_path": str(settings.warehouse_path),
        "engaged_session_seconds": ENGAGED_SESSION_SECONDS,
        "fallback_channel": FALLBACK_CHANNEL,
        "category_key_pattern": CATEGORY_KEY_PATTERN,
        "contact_attributes": [_contact_attribute(field) for field in CONTACT_ATTRIBUTES],
        "deal_stage_won": DEAL_STAGES.won,
        "deal_stage_lost": DEAL_STAGES.lost,
        "deal_stage_open": DEAL_STAGES.open,
        "deal_stages": list(DEAL_STAGES.all()),
        "input_field_bounds": {
            field.name: {"max": field.max_value, "at_most": field.at_most}
            for field in INPUT_FIELDS
            if field.max_value is not None
        },
    }


def dbt_vars_argument(settings: PipelineSettings) -> list[str]:
    return ["--vars", json.dumps(dbt_vars(settings), sort_keys=True)]


def dbt_cli(settings: PipelineSettings) -> DbtCliResource:
    """dbt on the settings' warehouse: the profile's target named like the engine."""
    return DbtCliResource(
        project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE, target=settings.warehouse
    )


def prepare_manifest(settings: PipelineSettings) -> Path:
    """Parse the dbt project into target/manifest.json (no warehouse connection needed)."""
    dbt_cli(settings).cli(
        ["parse", "--quiet", *dbt_vars_argument(settings)], target_path=dbt_project.target_path
    ).wait()
    return dbt_project.manifest_path


def channel_groups() -> list[str]:
    """GA4's default channel groups, in the dbt seed's order (their single source): the
    vocabulary a model's channel categories are learned from."""
    with CHANNEL_GROUPS_SEED.open(newline="") as handle:
        return [row["channel"] for row in csv.DictReader(handle)]
