"""Dagster definitions, one folder per domain, loaded by `load_from_defs_folder`:
ingestion -> warehouse -> training -> promotion -> publishing, and automation over them all."""
