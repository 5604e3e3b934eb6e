"""The service must stay installable and importable without the pipeline's heavy stack."""

from __future__ import annotations

import json
import subprocess
import sys

PIPELINE_ONLY = ("dagster", "dbt", "duckdb", "mlflow", "pandas")

# Imports the service in a fresh interpreter and prints which top-level packages got loaded.
PROBE = """
import json, sys
{prelude}
import leadscore_api.main
print(json.dumps(sorted({{name.split(".")[0] for name in sys.modules}})))
"""
# With scikit-learn installed (the pipeline extra), `import xgboost` imports it, and scikit-learn
# imports pandas. The API extra does not install scikit-learn, so the service's own environment
# is reproduced by making it unimportable, exactly as xgboost sees a missing package.
WITHOUT_SCIKIT_LEARN = 'sys.modules["sklearn"] = None'


def loaded_packages(prelude: str = "") -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(prelude=prelude)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_importing_the_service_loads_no_pipeline_package() -> None:
    loaded = loaded_packages()
    assert "leadscore_api" in loaded and "xgboost" in loaded
    assert loaded.isdisjoint({"dagster", "dbt", "duckdb", "mlflow", "leadscore_assets"})


def test_in_the_api_only_environment_not_even_pandas_is_loaded() -> None:
    loaded = loaded_packages(WITHOUT_SCIKIT_LEARN)
    assert "xgboost" in loaded
    assert loaded.isdisjoint(PIPELINE_ONLY), loaded & set(PIPELINE_ONLY)
