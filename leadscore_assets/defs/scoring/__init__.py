"""Scoring: every open lead scored with the published model, and the scores written back to
the CRM."""
