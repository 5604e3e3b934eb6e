"""The API's side of landing schema v2: the contacts' lead source and attributes as optional
request fields, text contact ids of every shape echoed back, channels matched whatever their
spelling, and models published before any of this still served."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from model_factory import synthetic_columns, train_model_file, with_contact_attributes

from leadscore_api.settings import ApiSettings
from leadscore_core.features import CONTACT_ATTRIBUTES, FEATURE_SETS

from .support import EXAMPLE_LEAD, running_app

# The `full` feature set before the contact attributes were added: what older models list.
PREVIOUS_FULL = tuple(
    name for name in FEATURE_SETS["full"] if name not in {f.name for f in CONTACT_ATTRIBUTES}
)
CONTACT_IDS = [
    "00Q5e00000AbCdEFGH",  # Salesforce, 18 characters
    "3f2b8c1e-9a4d-4e7b-8c21-5d6f7a8b9c0d",  # UUID
    "5f3a9c0b7e1d2a4c6b8e0f12",  # hex
    "1042",  # an integer id, as text
    1042,  # and as a JSON number
]


@pytest.fixture(scope="module")
def attribute_model(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("attributes") / "model.json"
    return train_model_file(
        path, model_version="attributes/1", contact_attributes=True
    ).read_bytes()


@pytest.fixture
def serve(
    publish: Callable[[bytes], None], settings_for: Callable[..., ApiSettings]
) -> Callable[[bytes], TestClient]:
    def start(raw: bytes):
        publish(raw)
        return running_app(settings_for())

    return start


def _score(client: TestClient, **fields) -> dict:
    response = client.post("/score", json={**EXAMPLE_LEAD, **fields})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_model_lists_its_learned_categories_and_optional_inputs(serve, attribute_model):
    with serve(attribute_model) as client:
        info = client.get("/model").json()
    columns, labels = synthetic_columns(4000, 0)
    sources = Counter(with_contact_attributes(columns, labels)["lead_source"])
    by_frequency = [s for s, _ in sources.most_common() if s is not None]
    assert info["categories"]["lead_source"] == [*by_frequency, "Other"]
    assert info["categories"]["job_title"] == ["Other"]  # no training lead had one
    inputs = {field["name"]: field for field in info["input_fields"]}
    assert inputs["lead_source"] == {"name": "lead_source", "kind": "category", "required": False}
    assert inputs["company_size"]["required"] is False


def test_attributes_move_the_score_and_unknown_values_score_as_other(serve, attribute_model):
    with serve(attribute_model) as client:
        webinar = _score(client, lead_source="Webinar")["score"]
        newsletter = _score(client, lead_source="Newsletter")["score"]
        assert webinar > newsletter  # the factory's converted leads mostly came from webinars
        assert _score(client, lead_source="Podcast") == _score(client, lead_source="Other")
        assert _score(client, lead_source=None) == _score(client)  # null is "not sent"
        explained = client.post(
            "/score?explain=true", json={**EXAMPLE_LEAD, "lead_source": "Podcast"}
        ).json()
    reason = next(r for r in explained["reasons"] if r["feature"] == "lead_source")
    assert reason["value"] == "Other"
    assert reason["text"].startswith("Lead source: Other (sent as 'Podcast')")


def test_a_batch_scores_attributes_as_single_requests_do(serve, attribute_model):
    leads = [
        {**EXAMPLE_LEAD, "lead_source": "Webinar", "company_size": 40, "country": "France"},
        {**EXAMPLE_LEAD, "lead_source": "Podcast"},
        dict(EXAMPLE_LEAD),
    ]
    with serve(attribute_model) as client:
        batch = client.post("/score/batch", json={"leads": leads}).json()["results"]
        single = [_score(client, **lead)["score"] for lead in leads]
    assert [result["score"] for result in batch] == pytest.approx(single, abs=1e-6)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"lead_source": 3}, "lead_source"),
        ({"lead_source": ""}, "lead_source"),
        ({"company_size": -1}, "company_size"),
        ({"company_size": 10_000_001}, "company_size"),
        ({"company_size": "50"}, "company_size"),
    ],
)
def test_an_invalid_attribute_is_a_422_naming_it(serve, attribute_model, fields, field):
    with serve(attribute_model) as client:
        response = client.post("/score", json={**EXAMPLE_LEAD, **fields})
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["detail"]] == [field]


def test_contact_ids_of_every_shape_are_echoed_as_sent(serve, attribute_model):
    with serve(attribute_model) as client:
        for contact_id in CONTACT_IDS:
            assert _score(client, contact_id=contact_id)["contact_id"] == contact_id
        batch = client.post(
            "/score/batch",
            json={"leads": [{**EXAMPLE_LEAD, "contact_id": c} for c in CONTACT_IDS]},
        ).json()
    assert [result["contact_id"] for result in batch["results"]] == CONTACT_IDS


def test_a_model_published_before_the_attributes_still_serves(serve, tmp_path: Path):
    """An older model lists neither the attributes nor GA4's newer groups: it loads, ignores the
    attributes, and matches a channel's spelling to its own categories."""
    previous = train_model_file(
        tmp_path / "previous.json", model_version="previous/1", feature_names=PREVIOUS_FULL
    ).read_bytes()
    with serve(previous) as client:
        info = client.get("/model").json()
        assert [f["name"] for f in info["features"]] == list(PREVIOUS_FULL)
        assert set(info["categories"]) == {"channel"}
        plain = _score(client, channel="Organic Search")
        assert _score(client, channel="organic search") == plain
        assert _score(client, channel="ORGANIC_SEARCH", lead_source="Webinar") == plain
        # A group this model never learned scores as its Unassigned.
        assert _score(client, channel="Cross-network") == _score(client, channel="Unassigned")
