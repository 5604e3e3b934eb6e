"""The pipeline: Dagster assets, dbt, training, publishing."""

import os

# XGBoost trains with OpenMP threads that, by default, spin while they wait for each other. On a
# machine shared with other work they spin on cores the others need: at a load average of 9 on
# 2 cores, 93,000 leads trained 15x slower than with passive waiting (BENCHMARKS.md). The OpenMP
# runtime reads this once, when XGBoost is first imported, so it is set before anything else of
# the pipeline loads; an explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
