"""Scoring: `lead_scores`, every open lead scored with the published model, and `crm_sync`, the
changed scores pushed to HubSpot.

When they run (docs/operations.md, "When lead scores are recomputed"):

- Both are in `retrain_job`, after `published_model`: every retrain (the daily schedule, the
  landing sensor, *Materialize all*) re-scores the open leads with the model it published.
- When a run changes the mart or the published model but does not score (the promotion gate
  refused the candidate, training failed, `published_model` was materialised on its own), the
  automation sensor `rescore_open_leads` starts a run of both, which scores with the model being
  served: new leads are scored the day they arrive even when no new model is published. It
  waits while a run that will update the mart or the model is in progress, and never scores a
  mart whose dbt tests failed.
"""

from collections import Counter
from datetime import datetime
from pathlib import Path

import dagster as dg

from leadscore_assets.crm.hubspot import HubSpotClient, HubSpotError, HubSpotSettings
from leadscore_assets.crm.sync import LedgerBusy, PushLedger, describe, sync_lead_scores
from leadscore_assets.defs.scoring.open_leads import ScoringResult, score_and_publish
from leadscore_assets.defs.scoring.tables import (
    LEAD_SCORE_HISTORY_TABLE,
    LEAD_SCORES_TABLE,
    SCORING_RUN_COLUMN,
)
from leadscore_assets.defs.warehouse.assets import MART_KEY
from leadscore_assets.freshness import DAILY
from leadscore_assets.provenance import source_version
from leadscore_assets.settings import PIPELINE_POOL, PipelineSettings
from leadscore_assets.warehouse import Warehouse
from leadscore_core.lead_scores import COLUMNS, open_snapshot
from leadscore_core.tiers import HIGH_LABEL, LOW_LABEL, sales_tiers

GROUP = "scoring"
PUBLISHED_MODEL_KEY = dg.AssetKey("published_model")
LEAD_SCORES_KEY = dg.AssetKey("lead_scores")
_HERE = Path(__file__).parent
_CORE = _HERE.parents[2] / "leadscore_core"

# Score again when the mart or the published model changed since the lead scores were last
# computed or requested. Unlike `AutomationCondition.eager()`, an update made by a run that was
# meant to score too still counts: that run may have stopped before scoring (a refused
# candidate), and it resets the condition itself when it does score.
RESCORE_WHEN_INPUTS_CHANGE = (
    dg.AutomationCondition.any_deps_match(dg.AutomationCondition.newly_updated())
    .since_last_handled()
    .with_label("mart or published model updated since the last scoring")
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
    & dg.AutomationCondition.all_deps_blocking_checks_passed()
)


def _counts(values: list[str], keys: list[str]) -> dict[str, int]:
    found = Counter(values)
    return {key: found.get(key, 0) for key in keys}


def _scoring_metadata(
    result: ScoringResult, settings: PipelineSettings, run_id: str
) -> dict[str, object]:
    """What the UI shows for a scoring run: how many leads, how they split, which model, which
    activity cut-offs, and when the scores were computed."""
    scored = result.scored
    column = {name: index for index, name in enumerate(COLUMNS)}
    tiers = [tier.letter for tier in sales_tiers(scored.run.high_threshold)]
    as_of = sorted(
        {row[column["features_as_of"]] for row in scored.rows} - {None},
        key=datetime.fromisoformat,
    )
    return {
        "dagster/row_count": len(scored.rows),
        "scored_at": dg.MetadataValue.timestamp(scored.run.scored_at),
        "model_version": scored.run.model_version,
        "model_sha256": scored.run.model_sha256,
        "leads_by_tier": dg.MetadataValue.json(
            _counts([row[column["tier"]] for row in scored.rows], tiers)
        ),
        "leads_by_label": dg.MetadataValue.json(
            _counts([row[column["label"]] for row in scored.rows], [HIGH_LABEL, LOW_LABEL])
        ),
        "features_as_of_earliest": as_of[0] if as_of else "none",
        "features_as_of_latest": as_of[-1] if as_of else "none",
        "high_threshold": scored.run.high_threshold,
        "tables": f"{LEAD_SCORES_TABLE} (replaced), {LEAD_SCORE_HISTORY_TABLE} (appended, "
        f"{SCORING_RUN_COLUMN} = {run_id})",
        "snapshot": dg.MetadataValue.path(str(settings.published_lead_scores_path)),
        "snapshot_id": result.snapshot.snapshot_id,
        "stage_seconds": dg.MetadataValue.json(result.seconds),
    }


@dg.asset(
    key=LEAD_SCORES_KEY,
    group_name=GROUP,
    deps=[PUBLISHED_MODEL_KEY, MART_KEY],
    code_version=source_version(
        [
            _HERE / "open_leads.py",
            _HERE / "tables.py",
            Path(__file__),
            *(_CORE / name for name in ("artifact.py", "explain.py", "features.py")),
            *(_CORE / name for name in ("lead_scores.py", "predictor.py", "tiers.py")),
        ]
    ),
    pool=PIPELINE_POOL,
    freshness_policy=DAILY,
    automation_condition=RESCORE_WHEN_INPUTS_CHANGE,
)
def lead_scores(
    context: dg.AssetExecutionContext,
    warehouse: dg.ResourceParam[Warehouse],
    settings: dg.ResourceParam[PipelineSettings],
) -> dg.MaterializeResult:
    """Every open lead (open deal or no deal) scored with the published model, as `/score`
    scores it, with tier and top 3 reasons: `marts.lead_scores` (replaced),
    `marts.lead_score_history` (appended, one `scoring_run_id` per run), and the snapshot
    `models/lead_scores.sqlite` the API answers `GET /leads/{contact_id}/score` from."""
    try:
        result = score_and_publish(settings, warehouse, context.run.run_id)
    except FileNotFoundError as error:
        raise dg.Failure(
            f"no published model to score the open leads with ({error}); "
            "materialise published_model first"
        ) from error
    scored = result.scored
    context.log.info(
        f"scored {len(scored.rows):,} open leads with {scored.run.model_version} "
        f"in {sum(result.seconds.values()):.1f} s ({result.seconds})"
    )
    return dg.MaterializeResult(metadata=_scoring_metadata(result, settings, context.run.run_id))


def _report_metadata(report_dict: dict[str, object], text: str) -> dict[str, object]:
    return {
        **{
            name: report_dict[name]
            for name in ("pushed", "unchanged", "to_push", "failed", "calls")
        },
        "stopped": report_dict["stopped"] or "no",
        "failures_by_reason": dg.MetadataValue.json(report_dict["failures_by_reason"]),
        "failed_contacts": dg.MetadataValue.json(report_dict["failed_contacts"]),
        "retries": dg.MetadataValue.json(report_dict["retries"]),
        "report": dg.MetadataValue.md(f"```\n{text}\n```"),
    }


@dg.asset(
    group_name=GROUP,
    deps=[LEAD_SCORES_KEY],
    code_version=source_version([_HERE.parents[1] / "crm", Path(__file__)]),
    pool=PIPELINE_POOL,
    automation_condition=dg.AutomationCondition.eager(),
)
def crm_sync(
    context: dg.AssetExecutionContext, settings: dg.ResourceParam[PipelineSettings]
) -> dg.MaterializeResult:
    """The published lead scores written back to HubSpot (docs/crm_sync.md): only contacts whose
    score, tier, reasons or model version changed since HubSpot last accepted them. Skipped,
    with a note, while `LEADSCORE_HUBSPOT_TOKEN` is not set."""
    hubspot = HubSpotSettings(data_dir=settings.data_dir)
    if hubspot.hubspot_token is None:
        note = (
            "skipped: LEADSCORE_HUBSPOT_TOKEN is not set, nothing was pushed "
            "(docs/crm_sync.md says how to point write-back at a HubSpot portal)"
        )
        context.log.info(note)
        return dg.MaterializeResult(metadata={"status": "skipped", "note": note})
    snapshot = open_snapshot(settings.published_lead_scores_path)
    try:
        with (
            PushLedger.locked(hubspot.ledger_path) as ledger,
            HubSpotClient.from_settings(hubspot) as client,
        ):
            report = sync_lead_scores(
                snapshot, ledger, client, batch_size=hubspot.hubspot_batch_size
            )
    except (LedgerBusy, HubSpotError) as error:
        raise dg.Failure(f"HubSpot write-back did not run: {error}") from error
    finally:
        snapshot.close()
    text = describe(report)
    metadata = _report_metadata(report.as_dict(), text)
    if report.stopped is not None:
        raise dg.Failure(
            description=f"HubSpot write-back stopped early; the next run pushes the rest.\n{text}",
            metadata=metadata,
        )
    context.log.info(f"HubSpot write-back of {snapshot.info.model_version}'s scores: {text}")
    status = "pushed" if report.ok else "pushed, some contacts failed"
    return dg.MaterializeResult(metadata={"status": status, **metadata})
