"""Helpers for the scoring service tests: model-file edits, the app with its lifespan, /metrics
reading, and a handle on a real service process."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import xgboost as xgb
from fastapi.testclient import TestClient
from integration.processes import ManagedProcess
from model_factory import synthetic_columns
from prometheus_client.parser import text_string_to_metric_families

from leadscore_api.main import create_app
from leadscore_api.settings import ApiSettings
from leadscore_core.artifact import METADATA_ATTRIBUTE, model_bytes
from leadscore_core.features import EXAMPLE_LEAD

__all__ = ["EXAMPLE_LEAD"]  # the tests' lead, from the one place it is defined

# Fast enough that tests wait little, slow enough to keep the poller cheap.
TEST_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class ModelFiles:
    """Published-format model files as bytes, trained once per test session."""

    v1: bytes
    v2: bytes
    seed: bytes


def with_metadata(raw: bytes, **changes: Any) -> bytes:
    """The same booster with metadata keys replaced, validated like any published model."""
    booster = xgb.Booster(model_file=bytearray(raw))
    metadata = json.loads(booster.attr(METADATA_ATTRIBUTE))
    return model_bytes(booster, {**metadata, **changes})


def unvalidated_model(raw: bytes, edit: Callable[[dict[str, Any]], Any]) -> bytes:
    """A model file whose metadata `edit` changed, written without the publish-time validation;
    `edit` may also return a whole replacement for the metadata."""
    booster = xgb.Booster(model_file=bytearray(raw))
    metadata = json.loads(booster.attr(METADATA_ATTRIBUTE))
    replacement = edit(metadata)
    document = metadata if replacement is None else replacement
    booster.set_attr(**{METADATA_ATTRIBUTE: json.dumps(document)})
    return bytes(booster.save_raw(raw_format="json"))


@contextmanager
def running_app(settings: ApiSettings) -> Iterator[TestClient]:
    """The real app with its lifespan (initial load and poller) running."""
    with TestClient(create_app(settings)) as client:
        yield client


def metric_value(client: TestClient | httpx.Client, sample_name: str, **labels: str) -> float:
    """One sample from /metrics, read with the Prometheus text parser (0 when absent)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == sample_name and all(
                sample.labels.get(key) == value for key, value in labels.items()
            ):
                return sample.value
    return 0.0


@dataclass
class Server:
    base_url: str
    process: ManagedProcess

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10.0, **kwargs)


def sample_leads(n_rows: int = 120) -> list[dict[str, Any]]:
    """Realistic leads plus the awkward ones: no sessions, unknown channels, missing optionals."""
    columns, _ = synthetic_columns(n_rows, seed=7)
    leads = []
    for i in range(n_rows):
        lead: dict[str, Any] = {
            "sessions": int(columns["sessions"][i]),
            "engaged_sessions": int(columns["engaged_sessions"][i]),
            "page_views": int(columns["page_views"][i]),
            "channel": str(columns["channel"][i]),
            "is_first_visit": bool(columns["is_first_visit"][i]),
        }
        if i % 3:
            lead["total_engagement_seconds"] = float(columns["total_engagement_seconds"][i])
            lead["days_active_span"] = float(columns["days_active_span"][i])
            lead["distinct_channels"] = int(columns["distinct_channels"][i])
        if i % 10 == 0:
            lead["channel"] = "Carrier Pigeon"
        leads.append(lead)
    no_sessions = {"sessions": 0, "engaged_sessions": 0, "page_views": 0, "is_first_visit": True}
    leads.append({**no_sessions, "channel": "Email", "total_engagement_seconds": 0.0})
    leads.append({**no_sessions, "channel": "TikTok"})
    return leads
