"""The Dagster code location loads, is wired as documented, and matches the feature spec."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import yaml
from dagster import AssetCheckKey, AssetKey, DefaultScheduleStatus, DefaultSensorStatus

from leadscore_api.schemas import AT_MOST
from leadscore_assets.definitions import build_definitions, defs
from leadscore_assets.defs.scoring.open_leads import OPEN_OUTCOMES
from leadscore_assets.project import DBT_PROJECT_DIR, MART_COLUMN_TYPES, dbt_vars
from leadscore_assets.settings import PIPELINE_POOL, PipelineSettings
from leadscore_core.features import CONTACT_ATTRIBUTES, CSV_COLUMNS, INPUT_FIELDS

REPO_ROOT = Path(__file__).resolve().parents[1]


def _graph():
    return defs.get_repository_def().asset_graph


def test_definitions_load_with_the_whole_lineage():
    graph = _graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {
        "landing_files",
        "raw/ga4_sessions",
        "raw/crm_contacts",
        "raw/crm_deals",
        "staging/stg_ga4_sessions",
        "staging/stg_crm_contacts",
        "staging/stg_crm_deals",
        "reference/channel_groups",
        "marts/fct_lead_scoring_features",
        "lead_scoring_features_csv",
        "lead_scoring_model",
        "published_model",
    } <= keys
    upstream = graph.get(AssetKey("published_model")).parent_keys
    assert upstream == {AssetKey("lead_scoring_model")}
    # one unbroken chain from the landing files to the published model
    ancestors = graph.upstream_key_iterator(AssetKey("published_model"))
    assert AssetKey("landing_files") in set(ancestors)
    mart_parents = graph.get(AssetKey(["marts", "fct_lead_scoring_features"])).parent_keys
    assert AssetKey(["staging", "stg_ga4_sessions"]) in mart_parents
    assert graph.get(AssetKey(["staging", "stg_ga4_sessions"])).parent_keys == {
        AssetKey(["raw", "ga4_sessions"]),
        AssetKey(["reference", "channel_groups"]),
    }
    # The landing quality report sits between the mart and the export it can stop.
    csv_parents = graph.get(AssetKey("lead_scoring_features_csv")).parent_keys
    assert csv_parents == {
        AssetKey(["marts", "fct_lead_scoring_features"]),
        AssetKey("landing_quality"),
    }
    assert (
        AssetKey(["quality", "landing_quality_figures"])
        in graph.get(AssetKey("landing_quality")).parent_keys
    )


def test_every_asset_has_a_code_version():
    graph = _graph()
    for key in graph.get_all_asset_keys():
        if graph.get(key).is_materializable:
            assert graph.get(key).code_version, key


def test_dbt_tests_and_the_gate_are_asset_checks():
    checks = {k.name for k in _graph().asset_check_keys}
    assert "promotion_gate" in checks
    assert "not_greater_than_fct_lead_scoring_features_engaged_sessions__sessions" in checks
    assert "unique_fct_lead_scoring_features_contact_id" in checks


def test_job_schedule_and_sensor_are_on_by_default():
    repository = defs.get_repository_def()
    job = repository.get_job("retrain_job")
    assert AssetKey("published_model") in job.asset_layer.selected_asset_keys
    schedule = repository.get_schedule_def("daily_retrain")
    assert schedule.cron_schedule == "0 6 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    sensor = repository.get_sensor_def("new_landing_files")
    assert sensor.default_status == DefaultSensorStatus.RUNNING


def test_lead_scores_follow_the_published_model_and_are_rescored_automatically():
    graph = _graph()
    lead_scores = graph.get(AssetKey("lead_scores"))
    assert lead_scores.parent_keys == {
        AssetKey("published_model"),
        AssetKey(["marts", "fct_lead_scoring_features"]),
    }
    assert graph.get(AssetKey("crm_sync")).parent_keys == {AssetKey("lead_scores")}
    assert lead_scores.automation_condition is not None
    assert graph.get(AssetKey("crm_sync")).automation_condition is not None
    repository = defs.get_repository_def()
    selected = repository.get_job("retrain_job").asset_layer.selected_asset_keys
    assert {AssetKey("lead_scores"), AssetKey("crm_sync")} <= selected
    sensor = repository.get_sensor_def("rescore_open_leads")
    assert sensor.default_status == DefaultSensorStatus.RUNNING
    assert sensor.asset_selection.resolve(graph) == {AssetKey("lead_scores"), AssetKey("crm_sync")}


def test_schedule_follows_its_setting(tmp_path):
    from leadscore_assets.settings import PipelineSettings

    custom = build_definitions(PipelineSettings(data_dir=tmp_path, retrain_cron="30 2 * * 1"))
    assert (
        custom.get_repository_def().get_schedule_def("daily_retrain").cron_schedule == "30 2 * * 1"
    )


def test_mart_yml_documents_every_exported_column():
    """The feature spec (CSV_COLUMNS) and the dbt mart's documented columns stay in step; the
    contact attributes are the columns the SQL copies from the dbt var rendered from the spec
    (the enforced contract then holds the SQL to the yml at every build)."""
    spec = yaml.safe_load(
        (DBT_PROJECT_DIR / "models/marts/fct_lead_scoring_features.yml").read_text()
    )
    documented = [c["name"] for c in spec["models"][0]["columns"]]
    assert [c for c in documented if c in CSV_COLUMNS] == list(CSV_COLUMNS)
    sql = (DBT_PROJECT_DIR / "models/marts/fct_lead_scoring_features.sql").read_text()
    attributes = {a["name"] for a in dbt_vars(PipelineSettings())["contact_attributes"]}
    assert attributes == {f.name for f in CONTACT_ATTRIBUTES}
    assert "leads_as_of.{{ attribute.name }}" in sql
    for column in documented:
        if column not in attributes:
            assert f" as {column}" in sql or f".{column}," in sql or f".{column}\n" in sql, column
    staging = yaml.safe_load((DBT_PROJECT_DIR / "models/staging/_staging.yml").read_text())
    contacts = next(m for m in staging["models"] if m["name"] == "stg_crm_contacts")
    assert attributes <= {c["name"] for c in contacts["columns"]}


def test_dagster_definitions_validate(tmp_path):
    env = {**os.environ, "LEADSCORE_DATA_DIR": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    completed = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-w",
            "workspace.yaml",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Validation successful" in completed.stdout + completed.stderr


def test_dbt_source_tests_are_checks_on_the_raw_assets():
    """The raw tables' unique/not-null keys and accepted stages show as checks on the raw assets
    (not as observations logged with a warning)."""
    checks: dict[str, set[str]] = {}
    for key in _graph().asset_check_keys:
        checks.setdefault(key.asset_key.to_user_string(), set()).add(key.name)
    assert "source_unique_raw_crm_contacts_contact_id" in checks["raw/crm_contacts"]
    assert "source_not_null_raw_ga4_sessions_user_pseudo_id" in checks["raw/ga4_sessions"]
    assert any(
        name.startswith("source_accepted_values_raw_crm_deals_stage")
        for name in checks["raw/crm_deals"]
    )
    # A test spanning two tables is a check on the staged deals.
    assert any(
        name.startswith("relationships_stg_crm_deals_contact_id")
        for name in checks["staging/stg_crm_deals"]
    )


def test_the_domains_under_defs_are_the_asset_groups():
    graph = _graph()
    groups = {graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups == {"ingestion", "warehouse", "training", "publishing", "scoring"}
    assert graph.get(AssetKey("lead_scoring_model")).group_name == "training"
    # The gate is the promotion domain's check on the model, not an asset of its own.
    assert AssetCheckKey(AssetKey("lead_scoring_model"), "promotion_gate") in graph.asset_check_keys


def test_what_users_consume_has_a_freshness_policy():
    for key in ("published_model", "lead_scores"):
        policy = _graph().get(AssetKey(key)).freshness_policy
        assert policy is not None, key
        assert policy.fail_window.to_timedelta() == timedelta(hours=26)


def test_every_step_of_the_chain_is_in_the_pipeline_pool():
    job = defs.get_repository_def().get_job("retrain_job")
    pools = {node.definition.pool for node in job.graph.node_dict.values()}
    assert pools == {PIPELINE_POOL}


def _mart_model() -> dict:
    spec = yaml.safe_load(
        (DBT_PROJECT_DIR / "models/marts/fct_lead_scoring_features.yml").read_text()
    )
    return spec["models"][0]


def _data_tests(column: dict) -> list[str | dict]:
    return column.get("data_tests", [])


def test_the_mart_contract_follows_the_feature_spec():
    """Columns, types, bounds and "at most" relations of the mart are those of features.py, and
    the API's AT_MOST is derived from the same fields."""
    model = _mart_model()
    assert model["config"]["contract"]["enforced"] is True
    columns = {column["name"]: column for column in model["columns"]}
    for field in INPUT_FIELDS:
        column = columns[field.name]
        assert column["data_type"] == MART_COLUMN_TYPES[field.kind], field.name
        tests = _data_tests(column)
        assert ("within_input_bounds" in tests) == (field.max_value is not None), field.name
        at_most = [
            test["not_greater_than"]["arguments"]["other_column"]
            for test in tests
            if isinstance(test, dict) and "not_greater_than" in test
        ]
        assert at_most == ([field.at_most] if field.at_most else []), field.name
    assert AT_MOST == {f.name: f.at_most for f in INPUT_FIELDS if f.at_most}


def test_every_var_the_dbt_project_reads_comes_from_the_python_spec(tmp_path):
    """A rule the SQL and YAML share with Python is passed in --vars (rendered from features.py
    and the landing schema), never given a second value in dbt_project.yml."""
    text = "\n".join(
        path.read_text()
        for path in DBT_PROJECT_DIR.rglob("*")
        if path.suffix in (".sql", ".yml") and "target" not in path.parts
    )
    used = set(re.findall(r"""(?<!env_)var\(\s*['"](\w+)['"]""", text))
    passed = set(dbt_vars(PipelineSettings(data_dir=tmp_path)))
    defaults = set(yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"])
    assert used - {"scoring_cutoff"} <= passed
    assert defaults == {"scoring_cutoff"}, "a run option, not a rule shared with Python"
    assert {
        "engaged_session_seconds",
        "fallback_channel",
        "deal_stages",
        "category_key_pattern",
        "contact_attributes",
    } <= used


def test_importing_the_definitions_changes_none_of_our_environment_variables(tmp_path):
    """Not PATH (dbt is found beside the interpreter), not the data dir or the MLflow store."""
    script = (
        "import json, os; before = dict(os.environ); import leadscore_assets.definitions; "
        "print(json.dumps(sorted(k for k in set(before) | set(os.environ) "
        "if before.get(k) != os.environ.get(k) and (k in ('PATH', 'DAGSTER_HOME') "
        "or k.startswith(('LEADSCORE_', 'MLFLOW_TRACKING', 'DBT_'))))))"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "LEADSCORE_DATA_DIR": str(tmp_path),
        "HOME": os.environ.get("HOME", str(tmp_path)),
    }
    completed = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == "[]"


def test_open_leads_are_named_by_the_mart_s_outcome_values():
    """The outcomes `lead_scores` treats as open are values the mart's outcome column accepts."""
    (outcome,) = [c for c in _mart_model()["columns"] if c["name"] == "outcome"]
    (accepted,) = [
        test["accepted_values"]["arguments"]["values"]
        for test in _data_tests(outcome)
        if isinstance(test, dict) and "accepted_values" in test
    ]
    assert set(OPEN_OUTCOMES) < set(accepted)
