"""The scoring service's configuration, read from LEADSCORE_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from leadscore_core.settings import DEFAULT_HIGH_THRESHOLD, DataDirSettings


class ApiSettings(DataDirSettings):
    """Where the published model is, how scores become labels, and who may call the service."""

    # Defaults to the pipeline's publish location, `$LEADSCORE_DATA_DIR/models/...`.
    model_path: Path | None = None
    # The lead scores snapshot, by default published beside the model.
    lead_scores_path: Path | None = None
    high_threshold: float = Field(DEFAULT_HIGH_THRESHOLD, ge=0.0, le=1.0)
    # Unset (or blank) means the scoring routes are open.
    api_key: SecretStr | None = None
    model_poll_seconds: float = Field(1.0, gt=0.0, le=60.0)
    max_batch: int = Field(10_000, ge=1, le=100_000)
    # Threads that parse, score and explain batches and explained leads, off the event loop.
    worker_threads: int = Field(1, ge=1, le=64)
    # Connection limits of `leadscore-api` (see docs/api.md, "Connections and reverse proxies").
    keep_alive_seconds: float = Field(5.0, gt=0.0, le=3600.0)
    request_read_timeout_seconds: float = Field(10.0, gt=0.0, le=3600.0)
    limit_concurrency: int = Field(512, ge=1)
    backlog: int = Field(2048, ge=1)

    @field_validator("api_key")
    @classmethod
    def _blank_key_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        # Compose files often pass `LEADSCORE_API_KEY=` when the variable is not set at all.
        if value is None or not value.get_secret_value().strip():
            return None
        return value

    @model_validator(mode="after")
    def _resolve_published_paths(self) -> ApiSettings:
        self.model_path = (self.model_path or self.published_model_path).expanduser().resolve()
        self.lead_scores_path = (
            (self.lead_scores_path or self.published_lead_scores_path).expanduser().resolve()
        )
        return self

    @property
    def served_model_path(self) -> Path:
        assert self.model_path is not None  # filled in by _resolve_published_paths
        return self.model_path

    @property
    def served_lead_scores_path(self) -> Path:
        assert self.lead_scores_path is not None  # filled in by _resolve_published_paths
        return self.lead_scores_path
