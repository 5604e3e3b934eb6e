"""A trained model on its way to the promotion gate: the `Candidate` value `lead_scoring_model`
outputs, the files staged for it, and the IO manager that hands exactly that candidate to the gate
and to publishing.

The IO manager keeps each run's candidate under the run's id, so the gate and the publish step of
a run load the model that run trained, even if another run trained one meanwhile; a step run on
its own (no upstream step in its run) gets the latest stored candidate, as Dagster's IO managers do.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pandas as pd
from dagster import ConfigurableIOManager, InputContext, OutputContext
from pydantic import BaseModel, ConfigDict

from leadscore_core.artifact import LoadedModel, load_model, write_atomically

MODEL_FILE = "model.json"
HOLDOUT_FILE = "holdout.parquet"
SEEN_CONTACTS_FILE = "training_contacts.parquet"
# The exact training file, kept for audits (its sha256 is that of the uncompressed CSV).
TRAINING_DATA_FILE = "lead_scoring_features.csv.gz"
MODEL_CARD_FILE = "model_card.md"
REPORT_DIR = "report"
CANDIDATE_RECORD = "candidate.json"


class Candidate(BaseModel):
    """One trained, registered model and its staged files (`models/candidates/v<N>/`)."""

    model_config = ConfigDict(frozen=True)

    model_version: str  # "lead_scoring/7"
    registered_version: str  # "7"
    directory: Path
    model_sha256: str
    mlflow_run_id: str
    dagster_run_id: str

    @property
    def model_path(self) -> Path:
        return self.directory / MODEL_FILE

    @property
    def holdout_path(self) -> Path:
        return self.directory / HOLDOUT_FILE

    @property
    def seen_contacts_path(self) -> Path:
        return self.directory / SEEN_CONTACTS_FILE

    @property
    def training_data_path(self) -> Path:
        return self.directory / TRAINING_DATA_FILE

    @property
    def card_path(self) -> Path:
        return self.directory / MODEL_CARD_FILE

    @property
    def report_dir(self) -> Path:
        return self.directory / REPORT_DIR

    def load_model(self) -> LoadedModel:
        """The staged model file, validated, and checked to be the one this candidate names."""
        model = load_model(self.model_path)
        if model.file_sha256 != self.model_sha256:
            raise ValueError(
                f"{self.model_path} is not the file {self.model_version} was staged as"
            )
        return model

    def holdout(self) -> pd.DataFrame:
        return pd.read_parquet(self.holdout_path)


def stage_directory(candidates_dir: Path, registered_version: str) -> Path:
    """An empty `v<N>/` for a newly registered version (a leftover from a failed run is
    replaced: registry versions are never reused)."""
    directory = candidates_dir / f"v{registered_version}"
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    return directory


def keep_training_data(csv_path: Path, directory: Path) -> Path:
    target = directory / TRAINING_DATA_FILE
    with csv_path.open("rb") as source, gzip.open(target, "wb", compresslevel=1) as copy:
        shutil.copyfileobj(source, copy)
    return target


class CandidateIOManager(ConfigurableIOManager):
    """Stores `Candidate` records in the candidates folder: per run (`runs/<run id>.json`) and as
    the asset's latest value (`latest.json`)."""

    candidates_dir: str

    def _runs_dir(self) -> Path:
        return Path(self.candidates_dir) / "runs"

    def handle_output(self, context: OutputContext, obj: Candidate) -> None:
        record = obj.model_dump_json(indent=2).encode()
        write_atomically(obj.directory / CANDIDATE_RECORD, record)
        write_atomically(self._runs_dir() / f"{context.run_id}.json", record)
        write_atomically(Path(self.candidates_dir) / "latest.json", record)

    def load_input(self, context: InputContext) -> Candidate:
        """The candidate the upstream step of this run (or of the run it re-executes) stored; for
        a step run on its own, whose upstream output has no stored run, the latest candidate."""
        path = self._runs_dir() / f"{context.upstream_output.run_id}.json"
        if not path.exists():
            path = Path(self.candidates_dir) / "latest.json"
        if not path.exists():
            raise FileNotFoundError(f"no trained candidate at {path}: materialise the model first")
        return Candidate.model_validate_json(path.read_bytes())
