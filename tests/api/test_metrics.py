"""Prometheus metrics: requests by route and status, latency, scores by model, model reloads."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from .support import EXAMPLE_LEAD, metric_value, running_app


def test_requests_are_counted_by_route_template_method_and_status(client: TestClient) -> None:
    for _ in range(3):
        client.post("/score", json=EXAMPLE_LEAD)
    client.post("/score", json={"sessions": -1})
    client.get("/no/such/page/42")
    client.request("BREW", "/score")

    def requests(route: str, method: str, status: str) -> float:
        return metric_value(
            client, "leadscore_http_requests_total", route=route, method=method, status=status
        )

    assert requests("/score", "POST", "200") == 3
    assert requests("/score", "POST", "422") == 1
    assert requests("unmatched", "GET", "404") == 1
    assert requests("/score", "other", "405") == 1
    assert (
        metric_value(client, "leadscore_http_request_duration_seconds_count", route="/score") == 5
    )


def test_latency_histogram_has_sub_millisecond_buckets(client: TestClient) -> None:
    client.post("/score", json=EXAMPLE_LEAD)
    buckets = {
        le: metric_value(
            client, "leadscore_http_request_duration_seconds_bucket", route="/score", le=le
        )
        for le in ("0.0005", "0.001", "0.003", "+Inf")
    }
    assert buckets["+Inf"] == 1
    assert buckets["0.0005"] <= buckets["0.001"] <= buckets["0.003"] <= 1


def test_scores_are_recorded_by_model_version(client: TestClient) -> None:
    score = client.post("/score", json=EXAMPLE_LEAD).json()["score"]
    client.post("/score/batch", json={"leads": [EXAMPLE_LEAD] * 4})
    labels = {"model_version": "test/1"}
    assert metric_value(client, "leadscore_score_count", **labels) == 5
    assert metric_value(client, "leadscore_score_sum", **labels) == pytest.approx(5 * score)


def test_the_served_model_is_described(client: TestClient) -> None:
    sha = client.get("/model").json()["file_sha256"]
    assert metric_value(client, "leadscore_model_info", model_version="test/1", sha256=sha) == 1
    assert metric_value(client, "leadscore_model_reloads_total") == 1
    assert metric_value(client, "leadscore_model_reload_failures_total") == 0
    assert metric_value(client, "leadscore_model_loaded_timestamp_seconds") > 0


def test_each_app_has_its_own_registry(model_files, publish, settings_for) -> None:
    publish(model_files.v1)
    with running_app(settings_for()) as first, running_app(settings_for()) as second:
        first.post("/score", json=EXAMPLE_LEAD)
        labels = {"route": "/score", "method": "POST", "status": "200"}
        assert metric_value(first, "leadscore_http_requests_total", **labels) == 1
        assert metric_value(second, "leadscore_http_requests_total", **labels) == 0


def test_metrics_are_prometheus_text(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE leadscore_http_requests_total counter" in response.text
