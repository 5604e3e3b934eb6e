#!/usr/bin/env python3
"""Write a copy of a leadscore n8n workflow that calls the scoring API at another base URL.

n8n 2.x blocks `$env` in expressions by default, so the scoring URL cannot come from the
environment without weakening n8n's settings. Instead, render a copy for each deployment:

    python automation/render_workflow.py --base-url http://scoring.internal:8000 -o workflow.json
    python automation/render_workflow.py --base-url http://scoring.internal:8000 \
        -i automation/n8n_crm_contact_workflow.json -o crm_workflow.json

and import that copy. Only the base of the scoring node's URL changes (the committed workflows
call http://127.0.0.1:8000); everything else is the committed workflow unchanged. Standard
library only, so it runs with any Python 3.11+.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

WORKFLOW_PATH = Path(__file__).resolve().parent / "n8n_workflow.json"
# Where the committed workflows call the scoring API.
COMMITTED_BASE_URL = "http://127.0.0.1:8000"
HTTP_REQUEST_NODE_TYPE = "n8n-nodes-base.httpRequest"
# n8n marks a parameter that is an expression with a leading "=".
EXPRESSION_PREFIX = "="


def _without_expression_prefix(url: object) -> str:
    return str(url).removeprefix(EXPRESSION_PREFIX)


def scoring_node(workflow: dict) -> dict:
    """The one HTTP Request node that calls the scoring API at the committed base URL."""
    nodes = [
        node
        for node in workflow["nodes"]
        if node["type"] == HTTP_REQUEST_NODE_TYPE
        and _without_expression_prefix(node["parameters"].get("url", "")).startswith(
            f"{COMMITTED_BASE_URL}/"
        )
    ]
    if len(nodes) != 1:
        raise ValueError(
            f"expected one HTTP Request node calling {COMMITTED_BASE_URL}, found {len(nodes)}"
        )
    return nodes[0]


def checked_base_url(base_url: str) -> str:
    """`http(s)://host[:port][/prefix]` without a trailing slash; anything else is refused."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base URL must look like http://host:port, got {base_url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"base URL must not carry a query or fragment: {base_url!r}")
    return base_url.rstrip("/")


def render(workflow: dict, base_url: str) -> dict:
    """A deep copy of `workflow` whose scoring node calls the same route under `base_url`."""
    copy = json.loads(json.dumps(workflow))
    parameters = scoring_node(copy)["parameters"]
    prefix = EXPRESSION_PREFIX if parameters["url"].startswith(EXPRESSION_PREFIX) else ""
    route = _without_expression_prefix(parameters["url"]).removeprefix(COMMITTED_BASE_URL)
    parameters["url"] = prefix + checked_base_url(base_url) + route
    return copy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--base-url",
        required=True,
        help="scoring API base URL, e.g. http://scoring.internal:8000 (routes are kept)",
    )
    parser.add_argument(
        "-i",
        "--input",
        type=Path,
        default=WORKFLOW_PATH,
        help="workflow to copy (default: %(default)s)",
    )
    parser.add_argument("-o", "--output", required=True, help="file to write, or - for stdout")
    args = parser.parse_args(argv)
    try:
        rendered = render(json.loads(args.input.read_text(encoding="utf-8")), args.base_url)
    except ValueError as exc:
        parser.error(str(exc))
    text = json.dumps(rendered, indent=2, ensure_ascii=False) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
