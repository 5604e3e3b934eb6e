# leadscore: `make run` (train, publish, serve) and `make test` (everything the CI runs).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

export LEADSCORE_DATA_DIR ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(LEADSCORE_DATA_DIR)/dagster
# MLflow reports usage to its maintainers unless told not to; nothing leaves this machine.
export MLFLOW_DISABLE_TELEMETRY ?= true
# Tools installed in the venv (dbt, dagster) must be found by the processes they start.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run install install-dev prepare instance materialize serve ui mlflow-ui test test-fast test-n8n bench clean

## run: install, build the dbt manifest, materialise the whole pipeline, then serve the API.
## Demo mode: an empty landing/ is seeded with synthetic data, and a model trained on it may be
## published. Every other target (and the pipeline's own default) leaves demo mode off.
run: export LEADSCORE_DEMO_MODE ?= true
run: install materialize serve

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[pipeline,api]'

install-dev: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[pipeline,api,dev]'

prepare:
	$(BIN)/leadscore prepare

# The Dagster instance's settings (run monitoring, the pipeline's concurrency pool, and its storage:
# LEADSCORE_DAGSTER_STORAGE), written before every run so that a changed setting always applies.
instance:
	$(BIN)/leadscore instance

## materialize: landing files -> ... -> published model
materialize: prepare instance
	$(BIN)/dagster job execute -m leadscore_assets.definitions -j retrain_job

serve:
	$(BIN)/leadscore-api --host $(HOST) --port $(PORT)

## ui: Dagster UI (asset graph, schedule, sensor) on http://127.0.0.1:3000
ui: prepare instance
	$(BIN)/dagster dev -w workspace.yaml

## mlflow-ui: MLflow UI on the pipeline's store (MLFLOW_TRACKING_URI, else the local one), http://127.0.0.1:5000
mlflow-ui:
	$(BIN)/mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(LEADSCORE_DATA_DIR)/mlflow/mlflow.db}" --port 5000

## test: everything, including the real-n8n integration test
test: install-dev prepare
	$(BIN)/pytest

test-fast: install-dev prepare
	$(BIN)/pytest -m "not slow and not n8n"

test-n8n: install-dev prepare
	$(BIN)/pytest -m n8n

## bench: scoring service, batch, pipeline and lead scores snapshot benchmarks (write the results into BENCHMARKS.md)
bench: install-dev
	command -v wrk >/dev/null || apt-get install -y wrk || (apt-get update && apt-get install -y wrk)
	work=$$(mktemp -d) && \
	  $(BIN)/python benchmarks/bench_api.py --rounds 3 --work-dir "$$work" && \
	  $(BIN)/python benchmarks/bench_batch.py --data-dir "$$work/pipeline-93000" && \
	  $(BIN)/python benchmarks/bench_lead_scores.py --data-dir "$$work/pipeline-93000" && \
	  rm -rf "$$work"
	$(BIN)/python benchmarks/bench_pipeline.py

clean:
	rm -rf dbt_project/target dbt_project/logs .pytest_cache
