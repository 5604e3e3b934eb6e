"""Warehouse: the dbt project (staging -> fct_lead_scoring_features) as Dagster assets.

dbt tests run in the same `dbt build` and surface as asset checks; a failing test stops the
models downstream of it, so the mart and the model keep their last good state.
"""

import os
import uuid
from collections.abc import Mapping
from typing import Any

from dagster import AssetExecutionContext, ResourceParam
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from leadscore_assets.project import dbt_project
from leadscore_assets.settings import PipelineSettings

GROUP = "warehouse"


class LeadscoreDbtTranslator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return GROUP


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    # Source tests (keys, stages, relationships on `raw.*`) become checks on the raw assets.
    dagster_dbt_translator=LeadscoreDbtTranslator(
        DagsterDbtTranslatorSettings(enable_source_tests_as_checks=True)
    ),
)
def leadscore_dbt_models(
    context: AssetExecutionContext, dbt: DbtCliResource, settings: ResourceParam[PipelineSettings]
):
    """`dbt build`: seeds, staging views, the feature mart and the time spine, with tests."""
    # profiles.yml reads the warehouse location from the environment of the dbt process.
    os.environ["LEADSCORE_DATA_DIR"] = str(settings.data_dir)
    target_path = settings.dbt_runs_dir / f"{context.run.run_id[:8]}-{uuid.uuid4().hex[:6]}"
    yield from dbt.cli(["build"], context=context, target_path=target_path).stream()
