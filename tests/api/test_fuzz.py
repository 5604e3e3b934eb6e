"""Property-based requests generated from the app's own OpenAPI schema (schemathesis).

Valid and invalid requests go through the real ASGI app with a real model; every response must
be a documented status with a documented body, invalid input must be rejected, and no input may
cause a server error. Generation is derandomised, so a run is repeatable.

Every built-in check applies, including that schema-valid input is accepted. For that, generated
valid leads are first made to respect `engaged_sessions <= sessions`, the one rule JSON Schema
cannot express (breaking it is rightly a 422, which the negative cases and the validation tests
cover).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.configuration import set_hypothesis_home_dir
from lead_scores_factory import score_open_leads
from schemathesis import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans

from leadscore_api.main import create_app
from leadscore_api.schemas import AT_MOST
from leadscore_core.artifact import load_model_bytes
from leadscore_core.lead_scores import write_snapshot

from .support import sample_leads

KEY = "fuzz-key"
# Examples per operation: (positive, negative). Routes without inputs have nothing to negate.
WITHOUT_KEY = {
    "POST /score": (300, 300),
    "POST /score/batch": (150, 150),
    "GET /model": (5, 0),
    "GET /leads/score": (40, 40),
    "GET /leads/{contact_id}/score": (40, 40),
    "GET /health": (5, 0),
    "GET /ready": (5, 0),
    "GET /metrics": (5, 0),
}
# With a key, negative requests mostly test the missing or wrong key.
WITH_KEY = {
    **WITHOUT_KEY,
    "POST /score": (60, 60),
    "POST /score/batch": (40, 40),
    "GET /model": (20, 20),
    "GET /leads/score": (20, 20),
    "GET /leads/{contact_id}/score": (20, 20),
}
MINIMUM_REQUESTS = 1000


@pytest.fixture
def schema_for(model_files, publish, settings_for, tmp_path: Path) -> Iterator:
    publish(model_files.v1)
    model = load_model_bytes(model_files.v1)
    leads = sample_leads(20)
    ids = [str(i) for i in range(len(leads))]
    write_snapshot(settings_for().served_lead_scores_path, score_open_leads(model, leads, ids))
    # Hypothesis keeps caches in its home directory (default: .hypothesis/ in the working dir).
    set_hypothesis_home_dir(tmp_path / "hypothesis")

    def load(api_key: str | None) -> schemathesis.BaseSchema:
        app = create_app(settings_for(api_key=api_key))
        config: dict[str, Any] = {"generation": {"allow-extra-parameters": False}}
        if api_key:
            config["auth"] = {"openapi": {"APIKeyHeader": {"api_key": api_key}}}
        return schemathesis.openapi.from_asgi(
            "/openapi.json", app, config=schemathesis.Config.from_dict(config)
        )

    try:
        yield load
    finally:
        shutdown_lifespans()  # the apps' model pollers
        set_hypothesis_home_dir(None)


def respect_cross_field_rule(body: object) -> None:
    """Make generated valid input valid beyond JSON Schema: engaged_sessions <= sessions."""
    leads = body.get("leads", [body]) if isinstance(body, dict) else []
    for lead in leads if isinstance(leads, list) else []:
        for field, bound in AT_MOST.items():
            if isinstance(lead, dict) and lead.get(field, 0) > lead.get(bound, 0):
                lead[field] = lead[bound]


def run_examples(operation: Any, mode: GenerationMode, examples: int, statuses: Counter) -> None:
    """Send `examples` generated requests and apply every built-in check to each response."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        if mode is GenerationMode.POSITIVE:
            respect_cross_field_rule(case.body)
        response = case.call()
        statuses[(operation.label, response.status_code)] += 1
        case.validate_response(response)

    check()


def exercise(schema: schemathesis.BaseSchema, budget: dict[str, tuple[int, int]]) -> Counter:
    """All operations of the schema, each with its budget; returns the statuses seen."""
    statuses: Counter = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {operation.label for operation in operations} == set(budget)
    for operation in operations:
        positive, negative = budget[operation.label]
        run_examples(operation, GenerationMode.POSITIVE, positive, statuses)
        if negative:
            run_examples(operation, GenerationMode.NEGATIVE, negative, statuses)
    return statuses


def test_generated_requests_never_cause_a_server_error(schema_for) -> None:
    statuses = exercise(schema_for(None), WITHOUT_KEY) + exercise(schema_for(KEY), WITH_KEY)
    assert sum(statuses.values()) >= MINIMUM_REQUESTS
    assert not [status for (_, status) in statuses if status >= 500]
    # Both kinds of request really reached the model and the validation.
    for route in ("POST /score", "POST /score/batch"):
        assert statuses[(route, 200)] > 0 and statuses[(route, 422)] > 0
        assert statuses[(route, 401)] > 0
    for route in ("GET /leads/score", "GET /leads/{contact_id}/score"):
        assert statuses[(route, 404)] > 0 and statuses[(route, 401)] > 0
