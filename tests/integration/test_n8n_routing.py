"""Lead routing in real n8n, with the real scoring API serving a real XGBoost model in the
published format (tests/model_factory.py: trained on synthetic rows with a wide range of scores,
so that some plausible leads are clearly hot) and a lead scores snapshot of that model's scores.

One headless n8n serves four published workflows, rendered from automation/n8n_workflow.json and
automation/n8n_crm_contact_workflow.json by automation/render_workflow.py (which changes only the
scoring API's base URL):
1. the routing workflow as committed, with a dummy Slack token: a high-scoring lead's execution
   composes the sales message and reaches the Slack node, which fails because Slack is
   unreachable from here; a low-scoring lead's execution ends at the NoOp;
2. a copy whose Slack node is swapped for an HTTP Request to a local receiver that honours Slack's
   `chat.postMessage` contract: it gets exactly one message per high lead, and none for low ones;
3. the CRM contact workflow as committed: a HubSpot `contact.creation` event for a hot contact
   reaches the Slack node with the message, a cold contact's ends at "not high", and a contact
   without a stored score (the API answers 404) ends at "not scored yet" without failing;
4. its copy with Slack swapped for a second receiver, fed one webhook call carrying all three
   events: exactly one message, for the hot contact.
Which leads are high or low is asked of the running API first (against the threshold it labels
`high` by), never assumed. Executions are read from n8n's database.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import secrets
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from lead_scores_factory import score_open_leads
from model_factory import train_model_file

from leadscore_core.artifact import load_model
from leadscore_core.lead_scores import write_snapshot

from .n8n_runtime import (
    AUTOMATION_DIR,
    REPO_ROOT,
    Execution,
    N8nInstance,
    N8nRuntime,
    N8nUnavailable,
    install_n8n,
)
from .processes import run_to_completion, start_scoring_api, wait_until
from .slack_receiver import SlackReceiver

pytestmark = pytest.mark.n8n

WORKFLOW_PATH = AUTOMATION_DIR / "n8n_workflow.json"
CRM_WORKFLOW_PATH = AUTOMATION_DIR / "n8n_crm_contact_workflow.json"
RECEIVER_COPY_ID = "leadscoreRoutingToReceiver"
RECEIVER_COPY_PATH = "lead-to-receiver"
CRM_RECEIVER_COPY_ID = "leadscoreCrmContactToReceiver"
CRM_RECEIVER_COPY_PATH = "crm-contact-to-receiver"
# HubSpot record ids: a hot and a cold contact in the snapshot, and one it does not hold.
HOT_CONTACT, COLD_CONTACT, UNKNOWN_CONTACT = 7001, 7002, 7999
SALES_CHANNEL_ID = "C0SALESNOTIF"
# "Clearly" above or below the routing threshold: no lead within this distance of it is used.
SCORE_MARGIN = 0.05
IF_TRUE, IF_FALSE = 0, 1
SCORED, NOT_SCORED = 0, 1  # outputs of the CRM workflow's Switch


def node_of_type(workflow: dict[str, Any], node_type: str) -> str:
    """The name of the workflow's one node of `node_type` (e.g. "webhook")."""
    (name,) = [n["name"] for n in workflow["nodes"] if n["type"] == f"n8n-nodes-base.{node_type}"]
    return name


@dataclass(frozen=True)
class WorkflowNodes:
    """The committed workflow's node names, found by type so a rename cannot break the test."""

    webhook: str
    score: str
    decision: str
    compose: str
    slack: str
    no_action: str

    @classmethod
    def of(cls, workflow: dict[str, Any]) -> WorkflowNodes:
        def named(node_type: str) -> str:
            return node_of_type(workflow, node_type)

        return cls(
            named("webhook"),
            named("httpRequest"),
            named("if"),
            named("set"),
            named("slack"),
            named("noOp"),
        )


@dataclass(frozen=True)
class CrmNodes:
    """The CRM contact workflow's node names, found by type and wiring."""

    webhook: str
    split: str
    lookup: str
    route: str
    decision: str
    compose: str
    slack: str
    not_high: str
    not_scored: str

    @classmethod
    def of(cls, workflow: dict[str, Any]) -> CrmNodes:
        def named(node_type: str) -> str:
            return node_of_type(workflow, node_type)

        def target(node: str, output: int) -> str:
            (link,) = workflow["connections"][node]["main"][output]
            return link["node"]

        route, decision = named("switch"), named("if")
        return cls(
            named("webhook"),
            named("splitOut"),
            named("httpRequest"),
            route,
            decision,
            named("set"),
            named("slack"),
            not_high=target(decision, IF_FALSE),
            not_scored=target(route, NOT_SCORED),
        )


@dataclass(frozen=True)
class ScoredLead:
    """A lead to fire at the webhook, with what the API itself answers for it."""

    payload: dict[str, Any]
    score: float
    reasons: list[dict[str, Any]]

    @property
    def email(self) -> str:
        return self.payload["email"]


@dataclass(frozen=True)
class RoutingRun:
    nodes: WorkflowNodes
    routing_workflow_id: str
    model_version: str
    high: list[ScoredLead]
    low: list[ScoredLead]
    executions: dict[str, list[Execution]]
    receiver: SlackReceiver
    slack_channel: str
    crm: CrmRun


@dataclass(frozen=True)
class CrmRun:
    """The CRM contact workflows' run: the contacts in the snapshot, and what n8n recorded."""

    nodes: CrmNodes
    workflow_id: str
    hot: ScoredLead
    cold: ScoredLead
    executions: dict[str, list[Execution]]
    receiver: SlackReceiver


def score_text(score: float) -> str:
    """The score as the workflow writes it: JavaScript's toFixed(2), which rounds half up on the
    double's exact value (Decimal(float) is exact, so this matches it digit for digit)."""
    return str(Decimal(score).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def candidate_leads(channels: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """Plausible, valid leads from a single bounce to long multi-channel engagement."""
    for (
        sessions,
        engaged_share,
        pages_per_session,
        channel,
        seconds,
        days,
        channel_count,
    ) in itertools.product(
        (1, 2, 3, 5, 8, 12), (0.5, 1.0), (2, 5, 10), channels, (30.0, 300.0), (0.0, 7.0), (1, 2)
    ):
        yield {
            "sessions": sessions,
            "engaged_sessions": round(sessions * engaged_share),
            "page_views": sessions * pages_per_session,
            "channel": channel,
            "is_first_visit": sessions == 1,
            "total_engagement_seconds": seconds * sessions,
            "days_active_span": days if sessions > 1 else 0.0,
            "distinct_channels": min(channel_count, sessions),
        }


def choose_leads(api: httpx.Client) -> tuple[list[ScoredLead], list[ScoredLead], str]:
    """Score the candidates with the running API and pick leads clearly above and below the
    threshold it labels `high` by; also returns the served model's version."""
    model = api.get("/model").raise_for_status().json()
    threshold = model["serving_threshold"]
    channels = tuple(model["categories"].get("channel", ())) or ("Direct",)
    candidates = list(candidate_leads(channels))
    results = (
        api.post("/score/batch", json={"leads": candidates}).raise_for_status().json()["results"]
    )
    ranked = sorted(zip((r["score"] for r in results), range(len(candidates)), strict=True))
    above = [i for score, i in ranked if score > threshold + SCORE_MARGIN]
    below = [i for score, i in ranked if score < threshold - SCORE_MARGIN]
    assert above, (
        f"no candidate lead scores above {threshold + SCORE_MARGIN} (max {ranked[-1][0]:.3f})"
    )
    assert below, (
        f"no candidate lead scores below {threshold - SCORE_MARGIN} (min {ranked[0][0]:.3f})"
    )
    # Per side, the lead nearest the threshold and the one farthest from it.
    high = list(dict.fromkeys([above[0], above[-1]]))
    low = list(dict.fromkeys([below[-1], below[0]]))

    def scored(index: int, email: str, contact_id: int | str) -> ScoredLead:
        payload = {**candidates[index], "email": email, "contact_id": contact_id}
        answer = api.post("/score", json={**payload, "explain": True}).raise_for_status().json()
        assert answer["score"] == pytest.approx(results[index]["score"], abs=1e-12)
        return ScoredLead(payload, answer["score"], answer["reasons"])

    return (
        [scored(i, f"high-{n}@example.com", 1000 + n) for n, i in enumerate(high, 1)],
        [scored(i, f"low-{n}@example.com", f"crm-low-{n}") for n, i in enumerate(low, 1)],
        model["model_version"],
    )


def receiver_copy(
    workflow: dict[str, Any],
    *,
    webhook: str,
    slack: str,
    copy_id: str,
    path: str,
    post_message_url: str,
) -> dict[str, Any]:
    """The workflow with its Slack node replaced by an HTTP Request that makes the same
    `chat.postMessage` call (same channel, same text, token from the same Slack credential)
    to `post_message_url`, served on its own webhook `path`."""
    swapped = copy.deepcopy(workflow)
    swapped["id"] = copy_id
    swapped["name"] = f"{workflow['name']} (Slack swapped for a local receiver)"
    for node in swapped["nodes"]:
        if node["name"] == webhook:
            node["parameters"]["path"] = path
            node["webhookId"] = str(uuid.uuid4())
    (slack_node,) = [node for node in swapped["nodes"] if node["name"] == slack]
    slack_parameters = slack_node["parameters"]
    slack_node.update(
        type="n8n-nodes-base.httpRequest",
        typeVersion=4.2,
        parameters={
            "method": "POST",
            "url": post_message_url,
            # The Slack credential's own authentication: `Authorization: Bearer <token>`.
            "authentication": "predefinedCredentialType",
            "nodeCredentialType": "slackApi",
            "sendBody": True,
            "contentType": "json",
            "specifyBody": "keypair",
            "bodyParameters": {
                "parameters": [
                    {"name": "channel", "value": slack_parameters["channelId"]["value"]},
                    {"name": "text", "value": slack_parameters["text"]},
                ]
            },
            "options": {},
        },
    )
    return swapped


def start_api(stack: ExitStack, model_path: Path, api_key: str, work: Path) -> str:
    api, base_url = start_scoring_api(
        {
            "LEADSCORE_MODEL_PATH": str(model_path),
            "LEADSCORE_API_KEY": api_key,
            "LEADSCORE_DATA_DIR": str(work / "data"),
        },
        log_path=work / "scoring-api.log",
        cwd=REPO_ROOT,
    )
    stack.callback(api.stop)
    return base_url


def run_script(script: str, *arguments: str, env: dict[str, str] | None = None) -> None:
    completed = run_to_completion(
        [sys.executable, str(AUTOMATION_DIR / script), *arguments],
        env=env or os.environ,
        timeout=60,
    )
    assert completed.returncode == 0, f"{script} failed:\n{completed.stdout}"


@pytest.fixture(scope="module")
def n8n_runtime() -> N8nRuntime:
    try:
        return install_n8n()
    except N8nUnavailable as unavailable:
        pytest.skip(str(unavailable))


def publish_crm_snapshot(
    api: httpx.Client, model_path: Path, snapshot_path: Path, high: ScoredLead, low: ScoredLead
) -> tuple[ScoredLead, ScoredLead]:
    """Write the lead scores snapshot the API answers `GET /leads/{id}/score` from: the hot and
    the cold contact, scored by the served model as the pipeline scores open leads; wait until
    the running API serves it and check it answers the same as `POST /score`."""
    contacts = {
        HOT_CONTACT: (high, "new-hot@example.com"),
        COLD_CONTACT: (low, "new-cold@example.com"),
    }
    features = [
        {k: v for k, v in lead.payload.items() if k not in ("email", "contact_id")}
        for lead, _ in contacts.values()
    ]
    write_snapshot(
        snapshot_path,
        score_open_leads(
            load_model(model_path, compiled_dir=model_path.parent),
            features,
            list(contacts),
            emails=[email for _, email in contacts.values()],
        ),
    )

    def served() -> dict[str, Any] | None:
        response = api.get(f"/leads/{HOT_CONTACT}/score")
        return response.json() if response.status_code == 200 else None

    wait_until(served, timeout=30, what="the scoring API to serve the lead scores snapshot")
    answers = []
    for (contact_id, (lead, email)), lead_features in zip(contacts.items(), features, strict=True):
        answer = api.get(f"/leads/{contact_id}/score").raise_for_status().json()
        assert answer["score"] == pytest.approx(lead.score, abs=1e-12)
        payload = {**lead_features, "email": email, "contact_id": str(contact_id)}
        answers.append(ScoredLead(payload, answer["score"], answer["reasons"]))
    assert api.get(f"/leads/{UNKNOWN_CONTACT}/score").status_code == 404
    return answers[0], answers[1]


def contact_created_events(*object_ids: int) -> list[dict[str, Any]]:
    """HubSpot's webhook body for `contact.creation` subscriptions: a JSON array of events."""
    occurred_at = int(time.time() * 1000)
    return [
        {
            "eventId": 1_000_000 + object_id,
            "subscriptionId": 2_401_001,
            "portalId": 62_515,
            "appId": 1_160_452,
            "occurredAt": occurred_at,
            "subscriptionType": "contact.creation",
            "attemptNumber": 0,
            "objectId": object_id,
            "changeFlag": "CREATED",
            "changeSource": "CRM",
        }
        for object_id in object_ids
    ]


def post_webhook(webhooks: httpx.Client, path: str, body: Any) -> None:
    response = webhooks.post(f"/webhook/{path}", json=body)
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
    assert response.json() == {"message": "Workflow was started"}


def render(api_url: str, workflow_path: Path, output: Path) -> dict[str, Any]:
    run_script(
        "render_workflow.py", "--base-url", api_url, "-i", str(workflow_path), "-o", str(output)
    )
    return json.loads(output.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def routing_run(
    n8n_runtime: N8nRuntime, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RoutingRun]:
    work = tmp_path_factory.mktemp("n8n-routing")
    # 20,000 synthetic rows: enough for the model to score the most engaged candidates well
    # above the threshold (with the factory's default 4,000 the highest stays near 0.83).
    model_path = train_model_file(
        work / "published" / "lead_scoring_model.json", model_version="routing/1", n_rows=20_000
    )
    nodes = WorkflowNodes.of(json.loads(WORKFLOW_PATH.read_text(encoding="utf-8")))
    crm_nodes = CrmNodes.of(json.loads(CRM_WORKFLOW_PATH.read_text(encoding="utf-8")))
    api_key = secrets.token_urlsafe(24)
    slack_token = f"xoxb-{secrets.token_hex(16)}"

    with ExitStack() as stack:
        api_url = start_api(stack, model_path, api_key, work)
        with httpx.Client(base_url=api_url, headers={"X-API-Key": api_key}, timeout=30) as api:
            high, low, model_version = choose_leads(api)
            hot, cold = publish_crm_snapshot(
                api,
                model_path,
                work / "data" / "models" / "lead_scores.sqlite",
                high[-1],
                low[0],
            )

        receivers = []
        for _ in range(2):  # one per copy, so each copy's messages are counted alone
            receiver = SlackReceiver(
                token=slack_token, channels={"sales-notifications": SALES_CHANNEL_ID}
            )
            receiver.start()
            stack.callback(receiver.stop)
            receivers.append(receiver)
        receiver, crm_receiver = receivers

        workflows_dir = work / "workflows"
        workflows_dir.mkdir()
        routing = render(api_url, WORKFLOW_PATH, workflows_dir / "routing.json")
        crm = render(api_url, CRM_WORKFLOW_PATH, workflows_dir / "crm-contact.json")
        swapped = receiver_copy(
            routing,
            webhook=nodes.webhook,
            slack=nodes.slack,
            copy_id=RECEIVER_COPY_ID,
            path=RECEIVER_COPY_PATH,
            post_message_url=receiver.post_message_url,
        )
        crm_swapped = receiver_copy(
            crm,
            webhook=crm_nodes.webhook,
            slack=crm_nodes.slack,
            copy_id=CRM_RECEIVER_COPY_ID,
            path=CRM_RECEIVER_COPY_PATH,
            post_message_url=crm_receiver.post_message_url,
        )
        for name, workflow in (("routing-to-receiver", swapped), ("crm-to-receiver", crm_swapped)):
            (workflows_dir / f"{name}.json").write_text(json.dumps(workflow), encoding="utf-8")
        credentials_file = work / "credentials.json"
        run_script(
            "render_credentials.py",
            "-o",
            str(credentials_file),
            env={**os.environ, "LEADSCORE_API_KEY": api_key, "SLACK_BOT_TOKEN": slack_token},
        )

        # One n8n for all four workflows: one import of each kind, then one start.
        all_workflows = (routing, swapped, crm, crm_swapped)
        n8n = N8nInstance(n8n_runtime, work / "n8n-home")
        n8n.import_credentials(credentials_file)
        n8n.import_workflows(workflows_dir)
        for workflow in all_workflows:
            n8n.publish(workflow["id"])
        n8n.start()
        stack.callback(n8n.stop)
        n8n.wait_until_serving(all_workflows)

        with httpx.Client(base_url=n8n.base_url, timeout=30) as webhooks:
            (trigger,) = [n for n in routing["nodes"] if n["name"] == nodes.webhook]
            for path in (trigger["parameters"]["path"], RECEIVER_COPY_PATH):
                for lead in high + low:
                    post_webhook(webhooks, path, lead.payload)
            (crm_trigger,) = [n for n in crm["nodes"] if n["name"] == crm_nodes.webhook]
            for contact_id in (HOT_CONTACT, COLD_CONTACT, UNKNOWN_CONTACT):
                post_webhook(
                    webhooks, crm_trigger["parameters"]["path"], contact_created_events(contact_id)
                )
            post_webhook(
                webhooks,
                CRM_RECEIVER_COPY_PATH,
                contact_created_events(HOT_CONTACT, COLD_CONTACT, UNKNOWN_CONTACT),
            )

        executions = {
            workflow["id"]: n8n.wait_for_executions(workflow["id"], len(high) + len(low))
            for workflow in (routing, swapped)
        }
        crm_executions = {
            crm["id"]: n8n.wait_for_executions(crm["id"], 3),
            CRM_RECEIVER_COPY_ID: n8n.wait_for_executions(CRM_RECEIVER_COPY_ID, 1),
        }
        yield RoutingRun(
            nodes=nodes,
            routing_workflow_id=routing["id"],
            model_version=model_version,
            high=high,
            low=low,
            executions=executions,
            receiver=receiver,
            slack_channel=next(
                n["parameters"]["channelId"]["value"]
                for n in routing["nodes"]
                if n["name"] == nodes.slack
            ),
            crm=CrmRun(
                nodes=crm_nodes,
                workflow_id=crm["id"],
                hot=hot,
                cold=cold,
                executions=crm_executions,
                receiver=crm_receiver,
            ),
        )


def executions_by_email(run: RoutingRun, workflow_id: str) -> dict[str, Execution]:
    executions = run.executions[workflow_id]
    by_email = {
        execution.webhook_body(run.nodes.webhook)["email"]: execution for execution in executions
    }
    assert len(by_email) == len(executions), "two executions for the same lead"
    assert set(by_email) == {lead.email for lead in run.high + run.low}
    return by_email


def assert_describes(message: str, lead: ScoredLead, model_version: str) -> None:
    """The sales message names the lead, its score, the model and the API's reasons."""
    assert lead.email in message
    assert f"Score: {score_text(lead.score)}" in message
    assert model_version in message
    assert lead.reasons, "the API gave no reasons for a high lead"
    for reason in lead.reasons:
        assert reason["text"] in message


def test_unchanged_workflow_sends_high_leads_to_slack_and_low_leads_to_the_noop(
    routing_run: RoutingRun,
) -> None:
    run, nodes = routing_run, routing_run.nodes
    by_email = executions_by_email(run, run.routing_workflow_id)

    for lead in run.high:
        execution = by_email[lead.email]
        assert execution.nodes_run == {
            nodes.webhook,
            nodes.score,
            nodes.decision,
            nodes.compose,
            nodes.slack,
        }
        # n8n passed the lead's fields on unchanged: the API scored it exactly as asked directly.
        (scored,) = execution.output_items(nodes.score)
        assert scored["score"] == pytest.approx(lead.score, abs=1e-12)
        assert scored["email"] == lead.email and scored["contact_id"] == lead.payload["contact_id"]
        assert scored["label"] == "high"
        assert len(execution.output_items(nodes.decision, IF_TRUE)) == 1
        assert execution.output_items(nodes.decision, IF_FALSE) == []
        (composed,) = execution.output_items(nodes.compose)
        assert_describes(composed["slack_message"], lead, run.model_version)
        # Reached, and failed only because slack.com cannot be reached from this machine.
        slack_error = execution.node_error(nodes.slack)
        assert slack_error is not None and "slack.com" in json.dumps(slack_error), slack_error
        assert execution.status == "error"

    for lead in run.low:
        execution = by_email[lead.email]
        assert execution.status == "success", execution.error
        assert execution.nodes_run == {nodes.webhook, nodes.score, nodes.decision, nodes.no_action}
        assert execution.output_items(nodes.decision, IF_TRUE) == []
        (passed,) = execution.output_items(nodes.no_action)
        assert passed["score"] == pytest.approx(lead.score, abs=1e-12)
        assert passed["label"] == "low"


def test_copy_with_a_local_slack_receiver_gets_one_message_per_high_lead(
    routing_run: RoutingRun,
) -> None:
    run, receiver = routing_run, routing_run.receiver
    by_email = executions_by_email(run, RECEIVER_COPY_ID)
    assert all(execution.status == "success" for execution in by_email.values()), [
        (execution.id, execution.error) for execution in by_email.values()
    ]
    assert receiver.rejected == []

    for lead in run.high:
        messages = [m for m in receiver.posted if lead.email in m.text]
        assert len(messages) == 1, f"{len(messages)} messages for {lead.email}: {receiver.posted}"
        (message,) = messages
        assert message.channel == run.slack_channel and message.channel_id == SALES_CHANNEL_ID
        assert f"Score: {score_text(lead.score)}" in message.text
        (composed,) = by_email[lead.email].output_items(run.nodes.compose)
        assert message.text == composed["slack_message"]
        # The HTTP Request node recorded Slack's answer to its call.
        (answer,) = by_email[lead.email].output_items(run.nodes.slack)
        assert (answer["ok"], answer["channel"], answer["ts"]) == (
            True,
            SALES_CHANNEL_ID,
            message.ts,
        )

    for lead in run.low:
        assert not [m for m in receiver.posted if lead.email in m.text]
    assert len(receiver.posted) == len(run.high)


def crm_executions_by_contact(run: CrmRun) -> dict[int, Execution]:
    executions = run.executions[run.workflow_id]
    by_contact = {}
    for execution in executions:
        (event,) = execution.webhook_body(run.nodes.webhook)
        by_contact[event["objectId"]] = execution
    assert set(by_contact) == {HOT_CONTACT, COLD_CONTACT, UNKNOWN_CONTACT}
    return by_contact


def test_crm_workflow_sends_a_hot_new_contact_to_slack_and_leaves_the_others(
    routing_run: RoutingRun,
) -> None:
    run, nodes = routing_run.crm, routing_run.crm.nodes
    by_contact = crm_executions_by_contact(run)
    path = [nodes.webhook, nodes.split, nodes.lookup, nodes.route]

    hot = by_contact[HOT_CONTACT]
    assert hot.nodes_run == {*path, nodes.decision, nodes.compose, nodes.slack}
    (looked_up,) = hot.output_items(nodes.lookup)
    assert looked_up["statusCode"] == 200
    assert looked_up["body"]["contact_id"] == str(HOT_CONTACT)
    assert looked_up["body"]["score"] == pytest.approx(run.hot.score, abs=1e-12)
    assert looked_up["body"]["label"] == "high"
    assert len(hot.output_items(nodes.decision, IF_TRUE)) == 1
    (composed,) = hot.output_items(nodes.compose)
    assert_describes(composed["slack_message"], run.hot, routing_run.model_version)
    assert f"tier {looked_up['body']['tier']}" in composed["slack_message"]
    slack_error = hot.node_error(nodes.slack)
    assert slack_error is not None and "slack.com" in json.dumps(slack_error), slack_error

    cold = by_contact[COLD_CONTACT]
    assert cold.status == "success", cold.error
    assert cold.nodes_run == {*path, nodes.decision, nodes.not_high}
    (passed,) = cold.output_items(nodes.not_high)
    assert passed["body"]["label"] == "low"
    assert passed["body"]["score"] == pytest.approx(run.cold.score, abs=1e-12)

    unknown = by_contact[UNKNOWN_CONTACT]
    assert unknown.status == "success", unknown.error
    assert unknown.nodes_run == {*path, nodes.not_scored}
    (not_scored,) = unknown.output_items(nodes.not_scored)
    assert not_scored["statusCode"] == 404
    assert not_scored["body"]["detail"].startswith(f"no score for contact '{UNKNOWN_CONTACT}'")


def test_crm_copy_with_a_local_slack_receiver_gets_one_message_for_a_batch_of_events(
    routing_run: RoutingRun,
) -> None:
    run, nodes = routing_run.crm, routing_run.crm.nodes
    (execution,) = run.executions[CRM_RECEIVER_COPY_ID]
    assert execution.status == "success", execution.error
    assert len(execution.output_items(nodes.split)) == 3  # one item per HubSpot event
    assert len(execution.output_items(nodes.route, SCORED)) == 2
    assert len(execution.output_items(nodes.route, NOT_SCORED)) == 1
    assert len(execution.output_items(nodes.decision, IF_TRUE)) == 1
    assert len(execution.output_items(nodes.decision, IF_FALSE)) == 1
    assert run.receiver.rejected == []
    (message,) = run.receiver.posted
    assert message.channel_id == SALES_CHANNEL_ID
    (composed,) = execution.output_items(nodes.compose)
    assert message.text == composed["slack_message"]
    assert_describes(message.text, run.hot, routing_run.model_version)
    assert run.cold.email not in message.text
