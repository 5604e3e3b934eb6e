"""CRM write-back: the lead scores, pushed onto the contact records where sales works.

Pure modules without Dagster: `hubspot` speaks HubSpot's documented API, `sync` decides what to
push and keeps the ledger that makes a run idempotent.
"""
