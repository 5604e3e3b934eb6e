"""`leadscore crm ...`: create the HubSpot properties once, and push the lead scores.

leadscore crm create-properties        create the leadscore_* contact properties in the portal
leadscore crm sync [--dry-run] [--force] [--json]
                                       push changed scores from the published snapshot
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _create_properties(_: argparse.Namespace) -> None:
    from leadscore_assets.crm.hubspot import HubSpotClient, HubSpotError, HubSpotSettings

    try:
        with HubSpotClient.from_settings(HubSpotSettings()) as client:
            outcome = client.create_properties()
    except HubSpotError as exc:
        raise SystemExit(f"leadscore crm create-properties: {exc}") from None
    for name, result in outcome.items():
        print(f"{name}: {result}")


def _sync(args: argparse.Namespace) -> None:
    from leadscore_assets.crm.hubspot import HubSpotClient, HubSpotError, HubSpotSettings
    from leadscore_assets.crm.sync import PushLedger, describe, sync_lead_scores
    from leadscore_core.lead_scores import SnapshotFileError, open_snapshot

    settings = HubSpotSettings()
    try:
        snapshot = open_snapshot(settings.published_lead_scores_path)
        client = None if args.dry_run else HubSpotClient.from_settings(settings)
    except (FileNotFoundError, SnapshotFileError, HubSpotError) as exc:
        raise SystemExit(f"leadscore crm sync: {exc}") from None
    try:
        with PushLedger.locked(settings.ledger_path) as ledger:
            report = sync_lead_scores(
                snapshot,
                ledger,
                client,
                batch_size=settings.hubspot_batch_size,
                dry_run=args.dry_run,
                force=args.force,
            )
    finally:
        if client is not None:
            client.close()
    print(json.dumps(report.as_dict(), indent=2) if args.json else describe(report))
    if not report.ok:
        sys.exit(1)


def add_crm_commands(commands: Any) -> None:
    """Register `crm` and its subcommands on the `leadscore` parser's subparsers."""
    crm = commands.add_parser("crm", help="HubSpot write-back (docs/crm_sync.md)")
    actions = crm.add_subparsers(dest="crm_command", required=True)
    actions.add_parser(
        "create-properties", help="create the leadscore_* contact properties (once per portal)"
    ).set_defaults(handler=_create_properties)
    sync = actions.add_parser("sync", help="push changed scores from the published snapshot")
    sync.add_argument("--dry-run", action="store_true", help="count, push nothing, no token")
    sync.add_argument("--force", action="store_true", help="push every lead, ignore the ledger")
    sync.add_argument("--json", action="store_true", help="print the report as JSON")
    sync.set_defaults(handler=_sync)
