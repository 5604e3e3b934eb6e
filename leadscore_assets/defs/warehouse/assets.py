"""Warehouse: the dbt project (staging -> fct_lead_scoring_features) as Dagster assets, and the
mart exported as `lead_scoring_features.csv` for training.

dbt tests run in the same `dbt build` and surface as asset checks (source tests as checks on the
raw assets); a failing test stops the models downstream of it, so the mart and the model keep
their last good state. dbt reads its constants from `--vars` rendered from the Python spec.
"""

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pyarrow as pa
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from leadscore_assets.project import dbt_project, dbt_vars_argument
from leadscore_assets.provenance import sha256_file, source_version
from leadscore_assets.settings import PIPELINE_POOL, PipelineSettings
from leadscore_assets.warehouse import Warehouse
from leadscore_core.features import CSV_COLUMNS, INPUT_FIELDS

GROUP = "warehouse"
MART_KEY = dg.AssetKey(["marts", "fct_lead_scoring_features"])
LANDING_QUALITY_KEY = dg.AssetKey("landing_quality")
MART_TABLE = "marts.fct_lead_scoring_features"
FEATURES_CSV_KEY = dg.AssetKey("lead_scoring_features_csv")
# Fractional columns are written with this many decimals: the same inputs give the same bytes,
# so the file's sha256 is a real data version.
CSV_DECIMALS = 6
_CODE = Path(__file__)


class LeadscoreDbtTranslator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return GROUP


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    # Source tests (keys, stages on `raw.*`) become checks on the raw assets.
    dagster_dbt_translator=LeadscoreDbtTranslator(
        DagsterDbtTranslatorSettings(enable_source_tests_as_checks=True)
    ),
    pool=PIPELINE_POOL,
)
def leadscore_dbt_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    settings: dg.ResourceParam[PipelineSettings],
):
    """`dbt build`: seeds, staging views, the feature mart and the time spine, with tests."""
    target_path = settings.dbt_runs_dir / f"{context.run.run_id[:8]}-{uuid.uuid4().hex[:6]}"
    yield from dbt.cli(
        ["build", *dbt_vars_argument(settings)], context=context, target_path=target_path
    ).stream()


def _csv_select() -> str:
    fractional = {f.name for f in INPUT_FIELDS if f.kind in ("seconds", "days")}
    return ", ".join(
        f"CAST({column} AS DECIMAL(18, {CSV_DECIMALS})) AS {column}"
        if column in fractional
        else column
        for column in CSV_COLUMNS
    )


def write_features_csv(mart: pa.Table, path: Path) -> None:
    """Write the mart's rows as the training CSV. One writer (an in-memory DuckDB, in UTC)
    formats every value, so the same values give the same bytes whichever warehouse engine they
    were read from."""
    quoted = str(path).replace("'", "''")
    with duckdb.connect() as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.register("mart", mart)
        conn.execute(
            f"COPY (SELECT {_csv_select()} FROM mart ORDER BY length(contact_id), contact_id) "
            f"TO '{quoted}' (HEADER, DELIMITER ',')"
        )


@dg.asset(
    key=FEATURES_CSV_KEY,
    group_name=GROUP,
    # The landing quality checks block the export: a failed join never reaches training.
    deps=[MART_KEY, LANDING_QUALITY_KEY],
    code_version=source_version([_CODE, _CODE.parents[3] / "leadscore_core" / "features.py"]),
    pool=PIPELINE_POOL,
)
def lead_scoring_features_csv(
    warehouse: dg.ResourceParam[Warehouse], settings: dg.ResourceParam[PipelineSettings]
) -> dg.MaterializeResult:
    """`lead_scoring_features.csv`: the mart's specified columns, written atomically, byte for
    byte the same for the same mart, on either warehouse engine. Rows are ordered by contact id,
    shorter ids first, which is numeric order for integer ids (and so the row order, and the
    random split, of the integer-id exports this file was written from before ids were text)."""
    target = settings.features_csv_path
    partial = target.with_name(f".{target.name}.tmp")
    rows, positives = warehouse.fetch_one(f"SELECT count(*), sum(is_won) FROM {MART_TABLE}")
    if not rows:
        raise dg.Failure(f"{MART_TABLE} is empty; refusing to replace {target.name}")
    mart = warehouse.fetch_arrow(f"SELECT {', '.join(CSV_COLUMNS)} FROM {MART_TABLE}")
    target.parent.mkdir(parents=True, exist_ok=True)
    write_features_csv(mart, partial)
    partial.replace(target)
    digest = sha256_file(target)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "positives": int(positives or 0),
            "conversion_rate": float((positives or 0) / rows),
            "columns": dg.MetadataValue.json(list(CSV_COLUMNS)),
            "path": dg.MetadataValue.path(str(target)),
            "sha256": digest,
        },
        data_version=dg.DataVersion(digest[:16]),
    )
