"""The documented command lines work from a fresh data directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from leadscore_core.artifact import load_model

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "LEADSCORE_DATA_DIR": str(data_dir),
        "DAGSTER_HOME": str(data_dir / "dagster"),
        **extra,
    }


def test_leadscore_generate_writes_a_batch(tmp_path):
    completed = subprocess.run(
        [
            str(BIN / "leadscore"),
            "generate",
            "--leads",
            "500",
            "--batch",
            "b2",
            "--first-contact-id",
            "9001",
        ],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    names = sorted(p.name for p in (tmp_path / "landing").iterdir() if not p.name.startswith("."))
    assert names == ["crm_contacts_b2.csv", "crm_deals_b2.csv", "ga4_sessions_b2.csv"]
    assert "9001" in (tmp_path / "landing" / "crm_contacts_b2.csv").read_text().splitlines()[1]


@pytest.mark.slow
def test_dagster_asset_materialize_all_from_an_empty_data_dir(tmp_path):
    (tmp_path / "dagster").mkdir()
    completed = subprocess.run(
        [
            str(BIN / "dagster"),
            "asset",
            "materialize",
            "-m",
            "leadscore_assets.definitions",
            "--select",
            "*",
        ],
        cwd=REPO_ROOT,
        env=_env(tmp_path, LEADSCORE_SYNTHETIC_LEADS="3000", LEADSCORE_DEMO_MODE="true"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    model = load_model(tmp_path / "models" / "lead_scoring_model.json")
    assert model.metadata["training_data"]["rows"] == 3000
    assert (tmp_path / "warehouse.duckdb").exists()
    assert not (REPO_ROOT / "mlruns").exists() and not (REPO_ROOT / "mlartifacts").exists()
