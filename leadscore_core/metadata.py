"""What a published model says about itself: one typed schema for the pipeline that writes it, the
loader that validates it, the scoring API's `/model` and the model card.

The file stores it as JSON (the booster attribute `leadscore_metadata`). What serving relies on
(version, features, categories, calibration) is typed strictly. Provenance (runs, training data,
code versions) is typed too, but a value of another shape — written by an older or newer pipeline —
is kept as written instead of making the model unservable; unknown keys are kept as well.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, with_config
from typing_extensions import TypedDict

SCHEMA_VERSION = 1


class FeatureEntry(TypedDict):
    """One model column, in the booster's order."""

    name: str
    kind: Literal["numeric", "categorical"]
    xgboost_type: str


class InputFieldEntry(TypedDict):
    """A request field the model's features are computed from."""

    name: str
    kind: str
    required: bool


@with_config(ConfigDict(extra="allow"))
class RegisteredModel(TypedDict, total=False):
    """The MLflow Model Registry entry."""

    name: str
    version: str


@with_config(ConfigDict(extra="allow"))
class TrainingData(TypedDict, total=False):
    """The exact features CSV the model was trained on."""

    path: str
    sha256: str  # of the uncompressed CSV
    rows: int
    positives: int
    fit_rows: int  # rows the trees were fitted on (the rest: the test rows)


@with_config(ConfigDict(extra="allow"))
class CodeVersion(TypedDict, total=False):
    git_commit: str | None  # "-dirty" when the checkout had uncommitted changes
    dbt_models: Any  # dbt's checksum of every model and seed, by name


class ModelMetadata(BaseModel):
    """The metadata every published model carries."""

    model_config = ConfigDict(extra="allow", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    model_version: str = Field(description='Registered name and version, e.g. "lead_scoring/3".')
    features: list[FeatureEntry] = Field(description="Model columns, in order.")
    input_fields: list[InputFieldEntry] = Field(
        default_factory=list, description="Request fields the features are derived from."
    )
    categories: dict[str, list[str]] = Field(description="Allowed values per categorical feature.")
    calibration: dict[str, Any] = Field(description="{method: none | platt | isotonic, ...}.")
    threshold: float | None = Field(None, description="Routing threshold chosen at training time.")

    trained_at: str | None = Field(None, description="When the model was trained (ISO 8601).")
    feature_set: str | None = Field(None, description='Feature set name, e.g. "seed" or "full".')
    model_type: str | None = None
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict, description="What the trees were trained with (searched or seed)."
    )
    tuning: dict[str, Any] | None = Field(
        None,
        description="The hyperparameter search: budget, trials run, what ended it, validation "
        "scores of the best trial and of the seed's settings, and which were chosen.",
    )
    split: str | None = Field(None, description='Holdout: "random" or "time".')
    metrics: dict[str, float | int] = Field(
        default_factory=dict, description="Evaluation metrics on the holdout."
    )
    seed_baseline_metrics: dict[str, float | int] | None = Field(
        None, description="The seed's four features with the seed's settings, same split."
    )
    seed_settings_metrics: dict[str, float | int] | None = Field(
        None, description="This feature set with the seed's fixed settings, same split."
    )
    required_inputs_only_metrics: dict[str, float | int] | None = None
    warnings: list[str] = Field(default_factory=list)

    registered_model: RegisteredModel | None = Field(
        None, description="MLflow registry entry: {name, version}."
    )
    mlflow_run_id: str | None = None
    mlflow_experiment_id: str | None = None
    dagster_run_id: str | None = None
    training_data: TrainingData | None = Field(
        None, description="{path, sha256, rows, positives, fit_rows}."
    )
    data_source: str | None = Field(None, description="What the model was trained on, in words.")
    demo: bool = Field(
        False,
        description="True for a model trained on the synthetic demo data (LEADSCORE_DEMO_MODE); "
        "never true for a model trained only on your own exports.",
    )
    code_version: CodeVersion | None = Field(None, description="{git_commit, dbt_models}.")

    def __getitem__(self, key: str) -> Any:
        """A field by name, as in the JSON document the model file stores."""
        return getattr(self, key)

    def document(self) -> dict[str, Any]:
        """The JSON document stored in the model file: the keys that were set, as written."""
        return self.model_dump(mode="json", exclude_unset=True)
