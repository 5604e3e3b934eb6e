"""The one entry point, for `dagster dev -w workspace.yaml` and
`dagster ... -m leadscore_assets.definitions`.

The definitions live in `defs/`, one folder per domain (ingestion, warehouse, training,
promotion, publishing, scoring, automation), loaded by Dagster's `load_from_defs_folder`. What
depends on the settings (the data directory, the schedule, the sensors) is built for the settings
bound here, so tests build definitions on a temporary data directory.
"""

from __future__ import annotations

from pathlib import Path

from dagster import Definitions, load_from_defs_folder

from leadscore_assets.settings import PipelineSettings, bound


def build_definitions(settings: PipelineSettings | None = None) -> Definitions:
    """Definitions bound to one data directory (tests build their own on a temp dir)."""
    with bound(settings or PipelineSettings()):
        return load_from_defs_folder(path_within_project=Path(__file__).parent)


defs = build_definitions()
