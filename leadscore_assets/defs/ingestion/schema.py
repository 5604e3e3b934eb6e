"""The landing schema: which files feed which raw table, their columns and keys, deal stages.

docs/landing_schema.md explains it for users; the loader enforces it, the dbt sources test it
(their accepted stages come from here through the dbt vars) and the demo generator writes it.
"""

from __future__ import annotations

from dataclasses import dataclass

RAW_SCHEMA = "raw"
LANDING_TABLES = ("ga4_sessions", "crm_contacts", "crm_deals")


@dataclass(frozen=True)
class Column:
    name: str
    duckdb_type: str
    required: bool = True
    not_null: bool = False


# Table -> columns. Optional columns may be absent (loaded as NULL).
LANDING_SCHEMA: dict[str, tuple[Column, ...]] = {
    "ga4_sessions": (
        Column("user_pseudo_id", "VARCHAR", not_null=True),
        Column("ga_session_id", "BIGINT", not_null=True),
        Column("ga_session_number", "INTEGER", not_null=True),
        Column("session_start", "TIMESTAMPTZ", not_null=True),
        Column("engagement_time_seconds", "DOUBLE"),
        Column("page_views", "INTEGER"),
        Column("session_default_channel_group", "VARCHAR"),
        Column("device_category", "VARCHAR", required=False),
        Column("country", "VARCHAR", required=False),
    ),
    "crm_contacts": (
        Column("contact_id", "BIGINT", not_null=True),
        Column("email", "VARCHAR"),
        Column("visitor_id", "VARCHAR"),
        Column("created_at", "TIMESTAMPTZ", not_null=True),
    ),
    "crm_deals": (
        Column("deal_id", "BIGINT", not_null=True),
        Column("contact_id", "BIGINT", not_null=True),
        Column("stage", "VARCHAR", not_null=True),
        Column("amount", "DOUBLE", required=False),
        Column("closed_at", "TIMESTAMPTZ", required=False),
    ),
}
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "ga4_sessions": ("user_pseudo_id", "ga_session_id"),
    "crm_contacts": ("contact_id",),
    "crm_deals": ("deal_id",),
}


@dataclass(frozen=True)
class DealStages:
    """The CRM deal stages the loader accepts and the mart derives each lead's outcome from."""

    won: str = "closed_won"
    lost: str = "closed_lost"
    open: str = "open"

    def all(self) -> tuple[str, str, str]:
        return (self.won, self.lost, self.open)


DEAL_STAGES = DealStages()
