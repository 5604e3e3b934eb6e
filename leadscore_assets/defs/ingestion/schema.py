"""The landing schema: which files feed which raw table, their columns and keys, deal stages.

docs/landing_schema.md explains it for users; the loader enforces it, the dbt sources test it
(their accepted stages come from here through the dbt vars) and the demo generator writes it.
The optional contact attributes (lead source, job title, ...) are declared once, as input fields
in leadscore_core/features.py; their landing columns follow from there.

Schema v2 (backward compatible: every v1 file loads as before): ids are text, engagement time and
page views may be empty (unknown), and crm_contacts may carry the contact attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

from leadscore_core.features import CONTACT_ATTRIBUTES, InputField

RAW_SCHEMA = "raw"
LANDING_TABLES = ("ga4_sessions", "crm_contacts", "crm_deals")


@dataclass(frozen=True)
class Column:
    name: str
    duckdb_type: str
    required: bool = True
    not_null: bool = False
    # A CRM or analytics id: text as written (integers, UUIDs, Salesforce or hex ids), trimmed;
    # a whole number written with a decimal point (`1042.0`, a spreadsheet's or a float column's
    # rendering) is read as `1042`, and a fraction (`2.5`) is refused rather than rounded.
    identifier: bool = False


def _identifier(name: str) -> Column:
    return Column(name, "VARCHAR", not_null=True, identifier=True)


_LANDING_TYPES = {"category": "VARCHAR", "count": "BIGINT", "seconds": "DOUBLE", "days": "DOUBLE"}


def _attribute(field: InputField) -> Column:
    return Column(field.name, _LANDING_TYPES[field.kind], required=False)


# Table -> columns. Optional columns may be absent (loaded as NULL).
LANDING_SCHEMA: dict[str, tuple[Column, ...]] = {
    "ga4_sessions": (
        Column("user_pseudo_id", "VARCHAR", not_null=True),
        _identifier("ga_session_id"),
        Column("ga_session_number", "INTEGER", not_null=True),
        Column("session_start", "TIMESTAMPTZ", not_null=True),
        # Empty (or the column absent): unknown, kept missing through to the model.
        Column("engagement_time_seconds", "DOUBLE", required=False),
        Column("page_views", "INTEGER", required=False),
        Column("session_default_channel_group", "VARCHAR"),
        Column("device_category", "VARCHAR", required=False),
        Column("country", "VARCHAR", required=False),
    ),
    "crm_contacts": (
        _identifier("contact_id"),
        Column("email", "VARCHAR"),
        Column("visitor_id", "VARCHAR"),
        Column("created_at", "TIMESTAMPTZ", not_null=True),
        *(_attribute(field) for field in CONTACT_ATTRIBUTES),
    ),
    "crm_deals": (
        _identifier("deal_id"),
        _identifier("contact_id"),
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
