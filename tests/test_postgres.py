"""The whole pipeline on PostgreSQL: the same landing files as the DuckDB run, loaded with COPY,
built by dbt's `postgres` target, tracked by MLflow in a Postgres store, run on a Dagster instance
whose storage is Postgres. The mart must equal DuckDB's, column by column, and the published model
must score every lead exactly as the DuckDB run's does.

The server is real (tests/postgres_server.py), started for the session on a loopback port.
"""

from __future__ import annotations

import shutil

import numpy as np
import psycopg
import pyarrow as pa
import pytest
from conftest import postgres_database
from dagster import DagsterInstance, DagsterRunStatus
from mlflow import MlflowClient
from pipeline_runner import Pipeline, install_instance_config
from postgres_server import SUPERUSER

from leadscore_assets.defs.ingestion.schema import LANDING_TABLES, PRIMARY_KEYS
from leadscore_assets.defs.training.training import input_columns, read_features_csv
from leadscore_assets.defs.warehouse.assets import MART_TABLE
from leadscore_assets.settings import REGISTERED_MODEL_NAME, PipelineSettings
from leadscore_assets.warehouse import DuckDBWarehouse, PostgresWarehouse, warehouse_for
from leadscore_core.artifact import load_model

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# Sums of floating-point columns are added in a different order by each engine.
FLOAT_SUM_RELATIVE_TOLERANCE = 1e-12


@pytest.fixture(scope="module")
def postgres_run(trained_pipeline, postgres_server, tmp_path_factory):
    """`retrain_job` on PostgreSQL, on a copy of the DuckDB run's landing files."""
    databases = {name: postgres_database(postgres_server) for name in ("wh", "mlflow", "dagster")}
    environment = {
        **postgres_server.environment(databases["wh"]),
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": str(postgres_server.port),
        "DAGSTER_PG_USERNAME": SUPERUSER,
        "DAGSTER_PG_PASSWORD": postgres_server.password,
        "DAGSTER_PG_DB": databases["dagster"],
    }
    data_dir = tmp_path_factory.mktemp("postgres-pipeline")
    # The same bytes, and the generator's record of them (so both models are demo models).
    shutil.copytree(trained_pipeline.settings.landing_dir, data_dir / "landing")
    with pytest.MonkeyPatch.context() as env:
        for name, value in environment.items():
            env.setenv(name, value)
        settings = PipelineSettings(
            data_dir=data_dir,
            demo_mode=True,
            synthetic_leads=trained_pipeline.settings.synthetic_leads,
            # The same search: it ends on its trial count, so the same data gives the same model.
            tuning_trials=trained_pipeline.settings.tuning_trials,
            tuning_timeout_seconds=trained_pipeline.settings.tuning_timeout_seconds,
            warehouse="postgres",
            mlflow_tracking_uri=postgres_server.url(databases["mlflow"]),
        )
        install_instance_config(data_dir / "dagster", storage="postgres")
        instance = DagsterInstance.from_config(str(data_dir / "dagster"))
        pipeline = Pipeline(settings, instance)
        pipeline.result = pipeline.run()
        pipeline.databases = databases
        assert pipeline.result.success, pipeline.failure_messages(pipeline.result)
        yield pipeline
        instance.dispose()


@pytest.fixture(scope="module")
def engines(trained_pipeline, postgres_run):
    duckdb_warehouse = warehouse_for(trained_pipeline.settings)
    postgres_warehouse = warehouse_for(postgres_run.settings)
    assert isinstance(duckdb_warehouse, DuckDBWarehouse)
    assert isinstance(postgres_warehouse, PostgresWarehouse)
    return duckdb_warehouse, postgres_warehouse


def test_every_asset_and_check_passes_on_postgres(postgres_run, trained_pipeline):
    result = postgres_run.result
    materialised = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    expected = {
        e.asset_key.to_user_string()
        for e in trained_pipeline.result.get_asset_materialization_events()
    }
    assert materialised == expected
    checks = postgres_run.check_results(result)
    assert set(checks) == set(trained_pipeline.check_results(trained_pipeline.result))
    assert all(c.passed for c in checks.values()), [n for n, c in checks.items() if not c.passed]


def test_raw_tables_hold_the_same_rows(engines):
    for table in LANDING_TABLES:
        query = f"SELECT * FROM raw.{table} ORDER BY {', '.join(PRIMARY_KEYS[table])}"
        duckdb_rows, postgres_rows = (engine.fetch_arrow(query) for engine in engines)
        assert postgres_rows.num_rows == duckdb_rows.num_rows > 0
        for name in duckdb_rows.column_names:
            expected = duckdb_rows[name]
            assert postgres_rows[name].cast(expected.type).equals(expected), (table, name)


def _checksum_sql(name: str, arrow_type: pa.DataType) -> str:
    """A checksum of one column that both engines compute the same way: the sum of numbers, of
    true values, of timestamps' epoch seconds; for strings, the md5 of every value in contact_id
    order (NULL as a marker no value uses)."""
    if pa.types.is_boolean(arrow_type):
        return f"sum(case when {name} then 1 else 0 end)"
    if pa.types.is_timestamp(arrow_type):
        return f"sum(extract(epoch from {name}))"
    if pa.types.is_string(arrow_type):
        return f"md5(string_agg(coalesce({name}, '<null>'), '|' order by contact_id))"
    return f"sum({name})"


def _column_checksums(engine, schema: pa.Schema) -> dict[str, tuple]:
    """Rows, and per column the non-null count and the checksum, computed by the engine."""
    parts = [f"count({f.name}), {_checksum_sql(f.name, f.type)}" for f in schema]
    values = engine.fetch_one(f"SELECT count(*), {', '.join(parts)} FROM {MART_TABLE}")
    checksums = {f.name: values[1 + 2 * i : 3 + 2 * i] for i, f in enumerate(schema)}
    return {"rows": values[0], **checksums}


def test_mart_equals_the_duckdb_mart(engines):
    duckdb_warehouse, postgres_warehouse = engines
    schema = duckdb_warehouse.fetch_arrow(f"SELECT * FROM {MART_TABLE} LIMIT 0").schema
    # features_as_of of a lead without an outcome is the run's own clock (checked below).
    schema = schema.remove(schema.get_field_index("features_as_of"))
    expected = _column_checksums(duckdb_warehouse, schema)
    actual = _column_checksums(postgres_warehouse, schema)
    assert actual["rows"] == expected["rows"] > 0
    for field in schema:
        (expected_count, expected_sum), (count, total) = expected[field.name], actual[field.name]
        assert count == expected_count, field.name
        if pa.types.is_string(field.type) or pa.types.is_integer(field.type):
            assert total == expected_sum, field.name
        else:  # floating-point sums: each engine adds in its own order
            assert float(total) == pytest.approx(
                float(expected_sum), rel=FLOAT_SUM_RELATIVE_TOLERANCE
            ), field.name

    # Beyond checksums: every value, row by row, is the same.
    query = f"SELECT * FROM {MART_TABLE} ORDER BY contact_id"
    duckdb_mart, postgres_mart = (engine.fetch_arrow(query) for engine in engines)
    for name in duckdb_mart.column_names:
        if name != "features_as_of":
            expected_column = duckdb_mart[name]
            assert postgres_mart[name].cast(expected_column.type).equals(expected_column), name


def test_features_as_of_is_the_outcome_or_the_run_time(engines):
    for engine in engines:
        mismatched = engine.fetch_one(
            f"SELECT count(*) FROM {MART_TABLE} "
            "WHERE outcome_at IS NOT NULL AND features_as_of <> outcome_at"
        )[0]
        assert mismatched == 0


def test_training_csv_is_byte_for_byte_the_duckdb_one(postgres_run, trained_pipeline):
    assert (
        postgres_run.settings.features_csv_path.read_bytes()
        == trained_pipeline.settings.features_csv_path.read_bytes()
    )


def test_published_models_give_identical_scores(postgres_run, trained_pipeline):
    leads = read_features_csv(trained_pipeline.settings.features_csv_path)
    duckdb_model = load_model(trained_pipeline.settings.published_model_path)
    postgres_model = load_model(postgres_run.settings.published_model_path)
    assert (
        postgres_model.metadata["training_data"]["sha256"]
        == (duckdb_model.metadata["training_data"]["sha256"])
    )
    duckdb_scores = duckdb_model.predict_proba(input_columns(leads))
    postgres_scores = postgres_model.predict_proba(input_columns(leads))
    assert len(postgres_scores) == len(leads)
    np.testing.assert_array_equal(postgres_scores, duckdb_scores)
    assert postgres_model.metadata["metrics"] == duckdb_model.metadata["metrics"]


def test_mlflow_tracks_and_registers_in_postgres(postgres_run):
    settings = postgres_run.settings
    assert settings.tracking_uri.startswith("postgresql://")
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    champion = client.get_model_version_by_alias(REGISTERED_MODEL_NAME, "champion")
    run = client.get_run(champion.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["dagster_run_id"] == postgres_run.result.run_id
    assert run.info.artifact_uri.startswith(settings.artifact_location)
    with psycopg.connect(settings.tracking_uri) as conn:
        stored = conn.execute(
            "SELECT count(*) FROM model_versions WHERE name = %s", (REGISTERED_MODEL_NAME,)
        ).fetchone()[0]
    assert stored == 1


def test_dagster_keeps_the_run_in_postgres(postgres_run, postgres_server):
    run = postgres_run.instance.get_run_by_id(postgres_run.result.run_id)
    assert run.status == DagsterRunStatus.SUCCESS
    with psycopg.connect(postgres_server.url(postgres_run.databases["dagster"])) as conn:
        status = conn.execute(
            "SELECT status FROM runs WHERE run_id = %s", (postgres_run.result.run_id,)
        ).fetchone()
    assert status == ("SUCCESS",)
