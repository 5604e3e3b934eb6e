"""Where runtime state lives. Both the pipeline and the API derive their paths from here."""

from __future__ import annotations

from pathlib import Path

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PUBLISHED_MODEL_RELATIVE_PATH = Path("models") / "lead_scoring_model.json"
# Every open lead's score, published beside the model (see leadscore_core/lead_scores.py).
PUBLISHED_LEAD_SCORES_RELATIVE_PATH = Path("models") / "lead_scores.sqlite"
# Above this score a lead is "high": the API's label, the pipeline's routing metrics and tiers.
DEFAULT_HIGH_THRESHOLD = 0.8


def default_data_dir() -> Path:
    """`data/` in the source checkout (the repo root holds pyproject.toml), else under the cwd."""
    checkout = Path(__file__).resolve().parents[1]
    base = checkout if (checkout / "pyproject.toml").exists() else Path.cwd()
    return base / "data"


class DataDirSettings(BaseSettings):
    """Settings shared by every leadscore process: the one data directory."""

    model_config = SettingsConfigDict(env_prefix="LEADSCORE_", extra="ignore")

    data_dir: Path = default_data_dir()

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # dbt and other subprocesses run in other working directories.
        return value.expanduser().resolve()

    @property
    def published_model_path(self) -> Path:
        return self.data_dir / PUBLISHED_MODEL_RELATIVE_PATH

    @property
    def published_lead_scores_path(self) -> Path:
        return self.data_dir / PUBLISHED_LEAD_SCORES_RELATIVE_PATH
