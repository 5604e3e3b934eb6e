"""Pipeline configuration: environment variables (prefix LEADSCORE_), documented in README.md."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from leadscore_core.calibration import CALIBRATION_METHODS
from leadscore_core.features import DEFAULT_FEATURE_SET
from leadscore_core.settings import DEFAULT_HIGH_THRESHOLD, DataDirSettings

EXPERIMENT_NAME = "Lead Scoring Optimization"
REGISTERED_MODEL_NAME = "lead_scoring"
CHALLENGER_ALIAS = "challenger"
CHAMPION_ALIAS = "champion"
# Every step of the chain runs in this Dagster concurrency pool; the instance settings
# (deploy/dagster.yaml) give it one slot, per run, so overlapping runs queue.
PIPELINE_POOL = "leadscore_pipeline"

SplitKind = Literal["random", "time"]
# Where the raw tables and the dbt models live (leadscore_assets/warehouse.py).
WarehouseKind = Literal["duckdb", "postgres"]
# Where the Dagster instance keeps runs, events and schedules (deploy/dagster.yaml and, for
# postgres, deploy/dagster_storage_postgres.yaml).
DagsterStorage = Literal["sqlite", "postgres"]
CALIBRATION_CHOICES = ("auto", *CALIBRATION_METHODS)
CalibrationChoice = Literal[CALIBRATION_CHOICES]  # type: ignore[valid-type]


class PipelineSettings(DataDirSettings):
    model_config = SettingsConfigDict(
        env_prefix="LEADSCORE_", extra="ignore", populate_by_name=True
    )

    # Demo mode (opt-in; `make run` turns it on): an empty landing/ is seeded with synthetic data,
    # and a model trained on synthetic data may be promoted. Off, such a model is refused.
    demo_mode: bool = False
    synthetic_leads: int = Field(93_000, ge=1)
    synthetic_seed: int = 42

    # Training.
    feature_set: str = DEFAULT_FEATURE_SET
    split: SplitKind = "random"
    calibration: CalibrationChoice = "auto"
    high_threshold: float = Field(DEFAULT_HIGH_THRESHOLD, gt=0, lt=1)
    training_threads: int = Field(2, ge=1)
    # The per-run hyperparameter search (docs/model.md) stops after this many trials or this many
    # seconds, whichever comes first; 0 trials trains with the seed's fixed settings.
    tuning_trials: int = Field(30, ge=0)
    tuning_timeout_seconds: float = Field(20.0, gt=0)

    # Promotion gate.
    gate_min_auc: float = Field(0.70, ge=0, le=1)
    gate_max_auc_drop: float = Field(0.005, ge=0, le=1)
    min_training_leads: int = Field(1_000, ge=0)
    min_training_conversions: int = Field(100, ge=0)

    # Landing quality (the `landing_quality` asset's checks, docs/landing_schema.md): below a
    # `min` or above a `max` threshold a check warns (`_warn`) or fails the run before training
    # (`_error`).
    quality_min_contact_match_rate_warn: float = Field(0.3, ge=0, le=1)
    quality_min_contact_match_rate_error: float = Field(0.01, ge=0, le=1)
    quality_min_session_match_rate_warn: float = Field(0.001, ge=0, le=1)
    quality_min_session_match_rate_error: float = Field(0.0, ge=0, le=1)
    quality_max_unassigned_share_warn: float = Field(0.25, ge=0, le=1)
    quality_max_unassigned_share_error: float = Field(0.95, ge=0, le=1)
    quality_max_point_in_time_dropped_share_warn: float = Field(0.5, ge=0, le=1)
    quality_max_point_in_time_dropped_share_error: float = Field(0.95, ge=0, le=1)

    # Automation.
    retrain_cron: str = "0 6 * * *"
    sensor_min_interval_seconds: int = Field(30, ge=1)

    # The warehouse: the embedded DuckDB file in the data dir, or a PostgreSQL database. The
    # Postgres connection is read from the environment by the pipeline and by dbt's profile alike
    # (dbt_project/profiles.yml), so set these variables rather than passing them in code.
    warehouse: WarehouseKind = "duckdb"
    postgres_host: str = "localhost"
    postgres_port: int = Field(5432, ge=1, le=65535)
    postgres_user: str = "leadscore"
    postgres_password: SecretStr = SecretStr("")
    postgres_database: str = "leadscore"
    postgres_sslmode: str = "prefer"

    # MLflow: the standard variable wins; default is a sqlite store in the data dir. Any store
    # MLflow supports works, e.g. postgresql://user:password@host:5432/mlflow.
    mlflow_tracking_uri: str | None = Field(
        None, validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "LEADSCORE_MLFLOW_TRACKING_URI")
    )
    # Where new experiments keep their artifacts (a path or URI such as s3://bucket/mlflow).
    # Default: the data dir, unless the tracking URI is a tracking server, which then decides.
    mlflow_artifact_location: str | None = None

    # The Dagster instance's storage, as installed by `leadscore instance`.
    dagster_storage: DagsterStorage = "sqlite"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def features_csv_path(self) -> Path:
        return self.data_dir / "lead_scoring_features.csv"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def candidates_dir(self) -> Path:
        return self.models_dir / "candidates"

    @property
    def mlflow_dir(self) -> Path:
        return self.data_dir / "mlflow"

    @property
    def dbt_runs_dir(self) -> Path:
        return self.data_dir / "dbt"

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def artifact_location(self) -> str | None:
        if self.mlflow_artifact_location:
            return self.mlflow_artifact_location
        if self.tracking_uri.startswith(("http://", "https://", "databricks")):
            return None
        return (self.mlflow_dir / "artifacts").as_uri()


_bound: ContextVar[PipelineSettings | None] = ContextVar("leadscore_settings", default=None)


@contextmanager
def bound(settings: PipelineSettings) -> Iterator[PipelineSettings]:
    """Build definitions for `settings` (a data directory, a schedule, ...) inside this block."""
    token = _bound.set(settings)
    try:
        yield settings
    finally:
        _bound.reset(token)


def current() -> PipelineSettings:
    """The settings definitions are being built for: those `bound` to, else the environment's."""
    return _bound.get() or PipelineSettings()
