"""Synthetic demo data with a documented conversion model (docs/synthetic_data.md): opt-in only."""
