"""The lead scores in the warehouse: `marts.lead_scores`, the latest scoring run's rows, and
`marts.lead_score_history`, every run's rows appended with the run's id.

The history answers "what did lead X score on date D, and with which model" in one query
(README.md, "Lead scores in the warehouse"). Both tables are replaced and appended in one
transaction, so a reader sees the previous run or the new one in both, never a mix.

The statements are portable SQL (the same types and statements run on PostgreSQL); only
loading the rows is DuckDB's: it scans the rows as a registered pandas frame. Another warehouse
plugs in with its own `write_score_tables` for its connection, reusing `COLUMN_TYPES` and the
statements.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from leadscore_core.lead_scores import COLUMNS, ScoredLeads

LEAD_SCORES_TABLE = "marts.lead_scores"
LEAD_SCORE_HISTORY_TABLE = "marts.lead_score_history"
SCORING_RUN_COLUMN = "scoring_run_id"
# The snapshot's columns (leadscore_core.lead_scores.COLUMNS) as warehouse columns.
COLUMN_TYPES: dict[str, str] = {
    "contact_id": "VARCHAR NOT NULL",
    "email": "VARCHAR",
    "score": "DOUBLE PRECISION NOT NULL",
    "label": "VARCHAR NOT NULL",
    "tier": "VARCHAR NOT NULL",
    "reasons": "VARCHAR NOT NULL",
    "model_version": "VARCHAR NOT NULL",
    "model_sha256": "VARCHAR NOT NULL",
    "scored_at": "TIMESTAMP WITH TIME ZONE NOT NULL",
    "features_as_of": "TIMESTAMP WITH TIME ZONE",
}
_STAGED = "staged_lead_scores"


def _type(column: str) -> str:
    return COLUMN_TYPES[column].removesuffix(" NOT NULL")


def create_statements() -> list[str]:
    """Create the schema and both tables when they do not exist yet."""
    columns = [f"{name} {COLUMN_TYPES[name]}" for name in COLUMNS]
    return [
        f"CREATE SCHEMA IF NOT EXISTS {LEAD_SCORES_TABLE.split('.')[0]}",
        f"CREATE TABLE IF NOT EXISTS {LEAD_SCORES_TABLE} ({', '.join(columns)})",
        f"CREATE TABLE IF NOT EXISTS {LEAD_SCORE_HISTORY_TABLE} "
        f"({', '.join([*columns, f'{SCORING_RUN_COLUMN} VARCHAR NOT NULL'])})",
    ]


def write_statements(staged: str) -> list[str]:
    """Replace the latest scores with the rows in table `staged` and append them to the
    history, as the run `?` (the one parameter)."""
    typed = ", ".join(f"CAST({name} AS {_type(name)}) AS {name}" for name in COLUMNS)
    return [
        f"DELETE FROM {LEAD_SCORES_TABLE}",
        f"INSERT INTO {LEAD_SCORES_TABLE} SELECT {typed} FROM {staged}",
        f"INSERT INTO {LEAD_SCORE_HISTORY_TABLE} SELECT {typed}, ? FROM {staged}",
    ]


def write_score_tables(connection: Any, scored: ScoredLeads, scoring_run_id: str) -> None:
    """Replace `marts.lead_scores` with `scored` and append it to `marts.lead_score_history`,
    in one DuckDB transaction; on any error nothing changes."""
    frame = pd.DataFrame.from_records(scored.rows, columns=list(COLUMNS))
    connection.register(_STAGED, frame)
    try:
        connection.execute("BEGIN TRANSACTION")
        try:
            for statement in create_statements():
                connection.execute(statement)
            for statement in write_statements(_STAGED):
                connection.execute(statement, [scoring_run_id] if "?" in statement else None)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    finally:
        connection.unregister(_STAGED)
