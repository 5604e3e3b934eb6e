"""The lead scores in the warehouse: `marts.lead_scores`, the latest scoring run's rows, and
`marts.lead_score_history`, every run's rows appended with the run's id.

The history answers "what did lead X score on date D, and with which model" in one query
(README.md, "Lead scores in the warehouse"). Both tables are written through the warehouse's
`write_tables`, replaced and appended in one transaction on either engine, so a reader sees the
previous run or the new one in both, never a mix.
"""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa

from leadscore_assets.warehouse import Warehouse
from leadscore_core.lead_scores import COLUMNS, ScoredLeads

LEAD_SCORES_TABLE = "marts.lead_scores"
LEAD_SCORE_HISTORY_TABLE = "marts.lead_score_history"
SCORING_RUN_COLUMN = "scoring_run_id"
_TIMESTAMP = pa.timestamp("us", tz="UTC")
# The warehouse type of each snapshot column (leadscore_core.lead_scores.COLUMNS, whose order the
# tables keep); text unless named here.
_TYPES = {"score": pa.float64(), "scored_at": _TIMESTAMP, "features_as_of": _TIMESTAMP}
_NULLABLE = {"email", "features_as_of"}
SCHEMA = pa.schema(
    [pa.field(name, _TYPES.get(name, pa.string()), nullable=name in _NULLABLE) for name in COLUMNS]
)


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def score_table(scored: ScoredLeads) -> pa.Table:
    """The run's rows as `marts.lead_scores` holds them (timestamps typed, in UTC)."""
    columns = list(zip(*scored.rows, strict=True)) if scored.rows else [()] * len(COLUMNS)
    arrays = [
        pa.array([_instant(v) for v in values] if field.type == _TIMESTAMP else values, field.type)
        for field, values in zip(SCHEMA, columns, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def write_score_tables(
    warehouse: Warehouse, scored: ScoredLeads, scoring_run_id: str
) -> dict[str, int]:
    """Replace `marts.lead_scores` with `scored` and append it to `marts.lead_score_history`
    under `scoring_run_id`, in one transaction; on any error neither table changes. Returns
    each table's row count after the write."""
    latest = score_table(scored)
    history = latest.append_column(
        pa.field(SCORING_RUN_COLUMN, pa.string(), nullable=False),
        pa.array([scoring_run_id] * latest.num_rows, pa.string()),
    )
    return warehouse.write_tables(
        replace={LEAD_SCORES_TABLE: latest}, append={LEAD_SCORE_HISTORY_TABLE: history}
    )
