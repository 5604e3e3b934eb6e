#!/usr/bin/env python3
"""Write the n8n credentials the lead-routing workflow references, for `n8n import:credentials`.

The secrets come from the environment, never from the repository:

    LEADSCORE_API_KEY   the scoring API's key (sent as the X-API-Key header)
    SLACK_BOT_TOKEN     the Slack bot token (xoxb-...) with the chat:write scope

    python automation/render_credentials.py -o credentials.json
    n8n import:credentials --input=credentials.json && rm credentials.json

Credential ids and names are read from the workflow's nodes, so the imported credentials are the
ones the imported workflow points at. n8n encrypts the values on import; the file written here
holds them in plain text, so it is created readable by its owner only: delete it after importing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

WORKFLOW_PATH = Path(__file__).resolve().parent / "n8n_workflow.json"
API_KEY_HEADER = "X-API-Key"
# n8n credential type -> (environment variable, how the credential's data holds it)
CREDENTIAL_SOURCES = {
    "httpHeaderAuth": (
        "LEADSCORE_API_KEY",
        lambda secret: {"name": API_KEY_HEADER, "value": secret},
    ),
    "slackApi": ("SLACK_BOT_TOKEN", lambda secret: {"accessToken": secret}),
}


def referenced_credentials(workflow: dict) -> dict[str, dict[str, str]]:
    """{credential type: {id, name}} for every credential a node of the workflow uses."""
    references: dict[str, dict[str, str]] = {}
    for node in workflow["nodes"]:
        for credential_type, reference in node.get("credentials", {}).items():
            known = references.setdefault(credential_type, reference)
            if known != reference:
                raise ValueError(f"nodes use two different {credential_type} credentials")
    return references


def credentials_for(workflow: dict, environ: dict[str, str]) -> list[dict]:
    """The import file's content; fails naming any missing environment variable."""
    references = referenced_credentials(workflow)
    unknown = sorted(set(references) - set(CREDENTIAL_SOURCES))
    if unknown:
        raise ValueError(f"no source for credential type(s): {', '.join(unknown)}")
    missing = sorted(
        CREDENTIAL_SOURCES[kind][0]
        for kind in references
        if not environ.get(CREDENTIAL_SOURCES[kind][0], "").strip()
    )
    if missing:
        raise ValueError(f"set the environment variable(s): {', '.join(missing)}")
    credentials = []
    for kind, reference in sorted(references.items()):
        variable, to_data = CREDENTIAL_SOURCES[kind]
        credentials.append(
            {
                "id": reference["id"],
                "name": reference["name"],
                "type": kind,
                "data": to_data(environ[variable].strip()),
            }
        )
    return credentials


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-i", "--input", type=Path, default=WORKFLOW_PATH, help="workflow (default: %(default)s)"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="file to write")
    args = parser.parse_args(argv)
    try:
        workflow = json.loads(args.input.read_text(encoding="utf-8"))
        credentials = credentials_for(workflow, dict(os.environ))
    except ValueError as exc:
        parser.error(str(exc))
    # Owner-only from the first byte: the file holds secrets until n8n has imported them.
    descriptor = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(credentials, handle, indent=2)
        handle.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
