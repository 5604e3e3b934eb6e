"""The candidate hand-off: each run's gate and publish step load the candidate that run trained."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import build_input_context, build_output_context

from leadscore_assets.defs.training.candidate import Candidate, CandidateIOManager


def _candidate(directory: Path, version: str, run_id: str) -> Candidate:
    directory.mkdir(parents=True)
    return Candidate(
        model_version=f"lead_scoring/{version}",
        registered_version=version,
        directory=directory,
        model_sha256="ab" * 32,
        mlflow_run_id=f"mlflow-{version}",
        dagster_run_id=run_id,
    )


def test_each_run_loads_the_candidate_it_trained_even_after_a_newer_one(tmp_path):
    manager = CandidateIOManager(candidates_dir=str(tmp_path))
    first = _candidate(tmp_path / "v1", "1", "run-a")
    second = _candidate(tmp_path / "v2", "2", "run-b")
    manager.handle_output(build_output_context(run_id="run-a"), first)
    manager.handle_output(build_output_context(run_id="run-b"), second)

    def loaded_for(run_id: str) -> Candidate:
        return manager.load_input(
            build_input_context(upstream_output=build_output_context(run_id=run_id))
        )

    assert loaded_for("run-a") == first
    assert loaded_for("run-b") == second
    # A step run on its own (nothing upstream in its run) gets the latest stored value.
    assert loaded_for("a-run-that-trained-nothing") == second
    assert (tmp_path / "v1" / "candidate.json").exists()


def test_a_missing_candidate_is_a_clear_error(tmp_path):
    manager = CandidateIOManager(candidates_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="materialise the model first"):
        manager.load_input(
            build_input_context(upstream_output=build_output_context(run_id="run-a"))
        )
