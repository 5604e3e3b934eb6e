"""Ingestion: landing files (seeded with demo data in demo mode) -> the warehouse's schema `raw`."""

from pathlib import Path

import dagster as dg

from leadscore_assets.defs.ingestion import folder as landing
from leadscore_assets.defs.ingestion.loader import load_landing
from leadscore_assets.defs.ingestion.schema import LANDING_TABLES, RAW_SCHEMA
from leadscore_assets.demo.files import seed_landing
from leadscore_assets.provenance import source_version
from leadscore_assets.settings import PIPELINE_POOL, PipelineSettings
from leadscore_assets.warehouse import Warehouse

GROUP = "ingestion"
RAW_TABLE_KEYS = {table: dg.AssetKey([RAW_SCHEMA, table]) for table in LANDING_TABLES}
# Recorded on the raw tables by a successful load only: what the landing sensor compares with.
LOADED_DIGEST_KEY = "files_digest"
_CODE_VERSION = source_version(
    [Path(__file__).parent, Path(__file__).parents[2] / "demo" / "generator.py"]
)


@dg.asset(group_name=GROUP, code_version=_CODE_VERSION, pool=PIPELINE_POOL)
def landing_files(
    context: dg.AssetExecutionContext, settings: dg.ResourceParam[PipelineSettings]
) -> dg.MaterializeResult:
    """The raw exports in `landing/` (GA4 sessions, CRM contacts, CRM deals).

    When the folder holds no data file and demo mode is on (LEADSCORE_DEMO_MODE), it is filled with
    the synthetic generator's exports (LEADSCORE_SYNTHETIC_LEADS leads, seed
    LEADSCORE_SYNTHETIC_SEED). Demo data is never generated otherwise.
    """
    landing_dir = settings.landing_dir
    files = landing.discover(landing_dir)
    seeded = False
    if not files and settings.demo_mode:
        context.log.info(
            f"landing/ is empty: generating {settings.synthetic_leads:,} synthetic leads "
            f"(seed {settings.synthetic_seed})"
        )
        seed_landing(settings.synthetic_leads, settings.synthetic_seed, landing_dir)
        files = landing.discover(landing_dir)
        seeded = True
    if not files:
        raise dg.Failure(
            f"No landing files in {landing_dir}. Drop ga4_sessions*, crm_contacts* and crm_deals* "
            "exports there (docs/landing_schema.md), or set LEADSCORE_DEMO_MODE=true to try the "
            "pipeline on synthetic demo data."
        )
    digest = landing.files_digest(files)
    ignored = landing.unrecognised(landing_dir)
    if ignored:
        context.log.warning(f"ignoring files that match no landing table: {', '.join(ignored)}")
    return dg.MaterializeResult(
        metadata={
            "files": dg.MetadataValue.json(dict(landing.landing_summary(files))),
            "total_bytes": sum(f.size for f in files),
            "seeded_with_synthetic_data": seeded,
            "ignored_files": dg.MetadataValue.json(ignored),
            "landing_dir": dg.MetadataValue.path(str(landing_dir)),
            "files_digest": digest,
        },
        data_version=dg.DataVersion(digest[:16]),
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key,
            deps=[landing_files],
            group_name=GROUP,
            description=f"Landing exports of `{table}` loaded into the warehouse's `raw.{table}`.",
            code_version=_CODE_VERSION,
        )
        for table, key in RAW_TABLE_KEYS.items()
    ],
    pool=PIPELINE_POOL,
)
def raw_landing_tables(
    context: dg.AssetExecutionContext,
    settings: dg.ResourceParam[PipelineSettings],
    warehouse: dg.ResourceParam[Warehouse],
):
    """Load every landing file into `raw.*` in one transaction.

    A malformed file is moved to landing/quarantine/ with a reason file beside it and the run
    fails naming it; the warehouse keeps the previously loaded data.
    """
    files = landing.discover(settings.landing_dir)
    try:
        loaded = load_landing(warehouse, files)
    except landing.LandingFileError as error:
        moved = landing.quarantine(error, settings.landing_dir)
        raise dg.Failure(
            description=f"Landing file {error.path.name} rejected: {error.problem}. "
            f"Moved to {moved.relative_to(settings.data_dir)}; the warehouse and the published "
            "model are unchanged.",
            metadata={
                "file": error.path.name,
                "problem": error.problem,
                "quarantined_to": str(moved),
            },
        ) from None
    for name, dropped in loaded.duplicate_rows.items():
        context.log.warning(f"{name}: {dropped:,} exact duplicate row(s) loaded once")
    summary = landing.landing_summary(files)
    digest = landing.files_digest(files)
    for table, key in RAW_TABLE_KEYS.items():
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "dagster/row_count": loaded.rows[table],
                "source_files": dg.MetadataValue.json(summary[table]),
                "duplicate_rows_dropped": dg.MetadataValue.json(
                    {name: loaded.duplicate_rows.get(name, 0) for name in summary[table]}
                ),
                "table": f"{RAW_SCHEMA}.{table}",
                "warehouse": warehouse.description,
                LOADED_DIGEST_KEY: digest,
            },
        )
