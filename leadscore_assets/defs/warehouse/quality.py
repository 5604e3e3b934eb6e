"""The landing quality report: how well the exports join, reported and checked before training.

A visitor-id format mismatch, a channel column that is not GA4's channel groups or timestamps in
the wrong zone do not fail any load or dbt test: the mart is built, every lead just has zero
sessions or one channel, and a model trains on that without a word. `landing_quality` reads the
figures the dbt models `quality.landing_quality_*` compute, records them as metadata and checks
them against the LEADSCORE_QUALITY_* thresholds: past a `warn` threshold the check warns, past an
`error` threshold it fails, and the run stops before the features CSV is written, so the model
and the published model keep their last good state.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import dagster as dg

from leadscore_assets.defs.ingestion.folder import discover, landing_summary
from leadscore_assets.defs.warehouse.assets import GROUP, LANDING_QUALITY_KEY
from leadscore_assets.provenance import source_version
from leadscore_assets.settings import PIPELINE_POOL, PipelineSettings
from leadscore_assets.warehouse import Warehouse

QUALITY_SCHEMA = "quality"
FIGURES_MODEL = "landing_quality_figures"
CHANNELS_MODEL = "landing_quality_channels"
FILES_MODEL = "landing_quality_files"
UNMATCHED_MODEL = "landing_quality_unmatched"
QUALITY_MODEL_KEYS = [
    dg.AssetKey([QUALITY_SCHEMA, name])
    for name in (FIGURES_MODEL, CHANNELS_MODEL, FILES_MODEL, UNMATCHED_MODEL)
]
EMPTY_VALUE = "(empty)"
# A GA cookie value (`_ga`: GA1.2.<client id>) where GA4's export has the bare client id.
_GA_COOKIE = re.compile(r"^GA\d+\.\d+\.(.+)$")

Verdict = Literal["ok", "warn", "error"]


@dataclass(frozen=True)
class QualityRule:
    """One checked figure: its check name, the column of landing_quality_figures it reads, the
    setting prefix of its thresholds, and whether low values (rates) or high ones (shares) are bad.
    """

    check: str
    figure: str
    setting: str
    low_is_bad: bool

    def thresholds(self, settings: PipelineSettings) -> tuple[float, float]:
        return getattr(settings, f"{self.setting}_warn"), getattr(settings, f"{self.setting}_error")

    def env(self, level: str) -> str:
        return f"LEADSCORE_{self.setting.upper()}_{level.upper()}"


RULES: tuple[QualityRule, ...] = (
    QualityRule("contact_match_rate", "contact_match_rate", "quality_min_contact_match_rate", True),
    QualityRule("session_match_rate", "session_match_rate", "quality_min_session_match_rate", True),
    QualityRule(
        "unassigned_channel_share", "unassigned_share", "quality_max_unassigned_share", False
    ),
    QualityRule(
        "point_in_time_dropped_share",
        "point_in_time_dropped_share",
        "quality_max_point_in_time_dropped_share",
        False,
    ),
)


def verdict(value: float | None, warn: float, error: float, low_is_bad: bool) -> Verdict:
    """Where a figure stands against its thresholds (None: nothing to measure, so ok)."""
    if value is None:
        return "ok"
    beyond = (lambda limit: value < limit) if low_is_bad else (lambda limit: value > limit)
    if beyond(error):
        return "error"
    return "warn" if beyond(warn) else "ok"


def _share(part: int, whole: int) -> str:
    return f"{part:,} of {whole:,} ({part / whole:.1%})" if whole else f"{part:,} of 0"


def describe(rule: QualityRule, figures: Mapping[str, Any]) -> str:
    """The figure in words, for the check's description."""
    if rule.check == "contact_match_rate":
        return (
            f"{_share(figures['contacts_with_sessions'], figures['contacts'])} contacts have a "
            f"session of their visitor id ({figures['contacts_without_visitor_id']:,} have no "
            "visitor id)"
        )
    if rule.check == "session_match_rate":
        return (
            f"{_share(figures['sessions_with_contact'], figures['sessions'])} sessions belong "
            "to a contact's visitor id"
        )
    if rule.check == "unassigned_channel_share":
        return (
            f"{_share(figures['sessions_unassigned'], figures['sessions'])} sessions count as "
            "channel 'Unassigned'"
        )
    return (
        f"{_share(figures['sessions_after_features_as_of'], figures['linked_sessions'])} sessions "
        "linked to a lead started at or after its outcome (or the scoring cut-off) and are not "
        "counted"
    )


def unmatched_hint(examples: Mapping[str, Sequence[str]]) -> str:
    """Examples of visitor ids that link nothing, from both exports, and the likely cause."""
    contact_ids = examples.get("crm_contacts.visitor_id", [])
    visitor_ids = examples.get("ga4_sessions.user_pseudo_id", [])
    lines = [
        f"{side} {', '.join(repr(v) for v in values)}"
        for side, values in (
            ("crm_contacts.visitor_id:", contact_ids),
            ("ga4_sessions.user_pseudo_id:", visitor_ids),
        )
        if values
    ]
    text = "Ids that match nothing, e.g. " + "; ".join(lines) + "." if lines else ""
    cookies = [m.group(1) for v in contact_ids if (m := _GA_COOKIE.match(v))]
    if cookies:
        text += (
            f" The contacts hold GA cookie values ({contact_ids[0]!r}) where GA4 exports the "
            f"bare client id ({cookies[0]!r}): cut the 'GA1.x.' prefix off visitor_id."
        )
    elif not contact_ids:
        text += " No contact has a visitor id: export the GA client id the form captured."
    return text


def check_result(
    rule: QualityRule,
    figures: Mapping[str, Any],
    settings: PipelineSettings,
    examples: Mapping[str, Sequence[str]],
) -> dg.AssetCheckResult:
    warn, error = rule.thresholds(settings)
    value = figures[rule.figure]
    outcome = verdict(value, warn, error, rule.low_is_bad)
    description = describe(rule, figures)
    if outcome != "ok":
        level = "error" if outcome == "error" else "warn"
        limit = error if outcome == "error" else warn
        side = "below" if rule.low_is_bad else "above"
        description += f": {side} the {level} threshold {limit:.1%} ({rule.env(level)})."
        if rule.check in ("contact_match_rate", "session_match_rate"):
            description += " " + unmatched_hint(examples)
    return dg.AssetCheckResult(
        check_name=rule.check,
        passed=outcome == "ok",
        severity=dg.AssetCheckSeverity.ERROR if outcome == "error" else dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "value": dg.MetadataValue.null() if value is None else float(value),
            "warn_threshold": warn,
            "error_threshold": error,
        },
    )


def _rows(conn: Any, model: str) -> list[dict[str, Any]]:
    cursor = conn.execute(f"SELECT * FROM {QUALITY_SCHEMA}.{model}")
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def rows_per_file(
    loaded: Sequence[Mapping[str, Any]], files: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, int]]:
    """Rows each landing file contributes, per table; a file whose rows a newer file replaced
    entirely contributes 0."""
    counts = {(row["landing_table"], row["file_name"]): int(row["rows_loaded"]) for row in loaded}
    return {
        table: {name: counts.get((table, name), 0) for name in names}
        for table, names in files.items()
    }


def threshold_text(threshold: float, low_is_bad: bool) -> str:
    """When a share fails a threshold, in the report's words: a share below 0 or above 100% never
    happens, so such a threshold reads "never" rather than "< 0.0%"."""
    if (threshold <= 0) if low_is_bad else (threshold >= 1):
        return "never"
    return f"{'<' if low_is_bad else '>'} {threshold:.1%}"


def report(figures: Mapping[str, Any], settings: PipelineSettings) -> str:
    """The checks as a markdown table: each figure, its value and its thresholds."""
    lines = ["| check | figure | value | warn | error |", "|---|---|---:|---:|---:|"]
    for rule in RULES:
        warn, error = rule.thresholds(settings)
        value = figures[rule.figure]
        shown = "–" if value is None else f"{value:.2%}"
        limits = " | ".join(threshold_text(t, rule.low_is_bad) for t in (warn, error))
        lines.append(f"| {rule.check} | {describe(rule, figures)} | {shown} | {limits} |")
    return "\n".join(lines)


@dg.asset(
    key=LANDING_QUALITY_KEY,
    group_name=GROUP,
    deps=QUALITY_MODEL_KEYS,
    check_specs=[
        dg.AssetCheckSpec(rule.check, asset=LANDING_QUALITY_KEY, blocking=True) for rule in RULES
    ],
    code_version=source_version([Path(__file__)]),
    pool=PIPELINE_POOL,
)
def landing_quality(
    context: dg.AssetExecutionContext,
    warehouse: dg.ResourceParam[Warehouse],
    settings: dg.ResourceParam[PipelineSettings],
):
    """How well the landing exports join: contacts with sessions, sessions with a contact,
    sessions counted as channel 'Unassigned' (with every unrecognised channel value and its
    count), sessions the point-in-time rule leaves out, and rows per landing file. Checks warn
    or fail against the LEADSCORE_QUALITY_* thresholds; a failure stops the run before the
    features CSV."""
    with warehouse.connect() as conn:
        (figures,) = _rows(conn, FIGURES_MODEL)
        channels = _rows(conn, CHANNELS_MODEL)
        loaded = _rows(conn, FILES_MODEL)
        unmatched = _rows(conn, UNMATCHED_MODEL)
    examples: dict[str, list[str]] = {}
    for row in sorted(unmatched, key=lambda r: (r["side"], r["example"])):
        examples.setdefault(row["side"], []).append(row["visitor_id"])
    unrecognised = {
        (row["channel_reported"] if row["channel_reported"] is not None else EMPTY_VALUE): int(
            row["sessions"]
        )
        for row in sorted(channels, key=lambda r: (-r["sessions"], str(r["channel_reported"])))
        if row["unrecognised"]
    }
    results = [check_result(rule, figures, settings, examples) for rule in RULES]
    for result in results:
        if not result.passed:
            failed = result.severity == dg.AssetCheckSeverity.ERROR
            (context.log.error if failed else context.log.warning)(
                f"landing quality {result.check_name}: {result.description}"
            )
    yield dg.MaterializeResult(
        metadata={
            **{
                name: dg.MetadataValue.null() if value is None else value
                for name, value in figures.items()
            },
            "unrecognised_channels": dg.MetadataValue.json(unrecognised),
            "unmatched_visitor_ids": dg.MetadataValue.json(examples),
            "rows_per_file": dg.MetadataValue.json(
                rows_per_file(loaded, landing_summary(discover(settings.landing_dir)))
            ),
            "report": dg.MetadataValue.md(report(figures, settings)),
        }
    )
    yield from results
