"""Write-back of the lead scores to HubSpot: what to push, and the ledger that makes it idempotent.

The ledger (a small SQLite file, by default `$LEADSCORE_DATA_DIR/crm/hubspot_ledger.sqlite`)
records, per contact, a fingerprint of the property values HubSpot last accepted. A run pushes
only contacts whose values differ from it, so running again pushes nothing unchanged, and a
contact whose push failed (it is not recorded) is pushed again by the next run. Accepted contacts
are recorded batch by batch, so a killed run keeps what it pushed; at worst the batch in flight
is pushed again, which is harmless (an update overwrites). One run at a time per ledger: a second
concurrent run fails at once instead of pushing the same contacts twice.

The ledger knows what was pushed, not what HubSpot holds now: a value edited in HubSpot by hand
is not restored until the score changes, or a run with `force`. Use one ledger per portal.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from leadscore_assets.crm.hubspot import HubSpotClient, HubSpotError
from leadscore_core.lead_scores import LeadScore

# Failed contacts listed by id in a report's dict form; all are counted.
REPORTED_FAILURES = 20


def contact_properties(lead: LeadScore) -> dict[str, str]:
    """The HubSpot property values for one lead (HubSpot takes every value as a string).

    `scored_at` is deliberately not pushed: it changes every run, and would make every run push
    every contact.
    """
    return {
        "leadscore_score": f"{lead.score:.6f}",
        "leadscore_tier": lead.tier,
        "leadscore_reasons": "\n".join(str(reason["text"]) for reason in lead.reasons),
        "leadscore_model_version": lead.model_version,
    }


def fingerprint(properties: Mapping[str, str]) -> str:
    canonical = json.dumps(properties, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()


class LedgerBusy(RuntimeError):
    """Another write-back run holds the ledger."""


class PushLedger:
    """What HubSpot last accepted per contact; open with `PushLedger.locked(path)`."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    @classmethod
    @contextmanager
    def locked(cls, path: Path) -> Iterator[PushLedger]:
        """The ledger at `path` (created when absent), held exclusively for one run."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(f"{path.name}.lock"), "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LedgerBusy(f"another write-back run is using {path}") from None
            with closing(sqlite3.connect(path, isolation_level=None)) as connection:
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS pushed (contact_id TEXT PRIMARY KEY NOT NULL, "
                    "fingerprint TEXT NOT NULL, pushed_at TEXT NOT NULL) WITHOUT ROWID"
                )
                yield cls(connection)

    def fingerprints(self) -> dict[str, str]:
        return dict(self._connection.execute("SELECT contact_id, fingerprint FROM pushed"))

    def record(self, accepted: Iterable[tuple[str, str]]) -> None:
        """Record (contact id, fingerprint) pairs HubSpot accepted, in one transaction."""
        now = datetime.now(UTC).isoformat()
        with self._connection:
            self._connection.execute("BEGIN")
            self._connection.executemany(
                "INSERT OR REPLACE INTO pushed VALUES (?, ?, ?)",
                ((contact_id, value, now) for contact_id, value in accepted),
            )


@dataclass
class SyncReport:
    """One write-back run: how many contacts were pushed, unchanged or failed, and why."""

    dry_run: bool
    pushed: int = 0
    unchanged: int = 0
    to_push: int = 0
    failures: dict[str, str] = field(default_factory=dict)  # contact id -> reason
    stopped: str | None = None  # why the run ended before trying every changed contact
    calls: int = 0
    retries: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def ok(self) -> bool:
        return self.stopped is None and not self.failures

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with failures counted by reason and the first few listed by contact."""
        return {
            "dry_run": self.dry_run,
            "pushed": self.pushed,
            "unchanged": self.unchanged,
            "to_push": self.to_push,
            "failed": self.failed,
            "failures_by_reason": dict(Counter(self.failures.values()).most_common()),
            "failed_contacts": dict(list(self.failures.items())[:REPORTED_FAILURES]),
            "stopped": self.stopped,
            "calls": self.calls,
            "retries": dict(self.retries),
        }


def sync_lead_scores(
    leads: Iterable[LeadScore],
    ledger: PushLedger,
    client: HubSpotClient | None,
    *,
    batch_size: int = 100,
    dry_run: bool = False,
    force: bool = False,
) -> SyncReport:
    """Push the leads whose HubSpot values changed since HubSpot last accepted them.

    `dry_run` only counts what would be pushed (no client needed); `force` pushes every lead
    regardless of the ledger. A refused call (bad token, missing properties) or HubSpot staying
    unavailable through every retry stops the run: the contacts not yet accepted are reported
    failed with that reason, and are pushed by the next run.
    """
    report = SyncReport(dry_run=dry_run)
    known = {} if force else ledger.fingerprints()
    changed: list[tuple[str, dict[str, str], str]] = []
    for lead in leads:
        properties = contact_properties(lead)
        value = fingerprint(properties)
        if known.get(lead.contact_id) == value:
            report.unchanged += 1
        else:
            changed.append((lead.contact_id, properties, value))
    report.to_push = len(changed)
    if dry_run or not changed:
        return report
    if client is None:
        raise ValueError("a HubSpot client is needed unless dry_run")
    for start in range(0, len(changed), batch_size):
        batch = changed[start : start + batch_size]
        try:
            outcome = client.update_contacts({contact_id: props for contact_id, props, _ in batch})
        except HubSpotError as exc:
            report.stopped = str(exc)
            for contact_id, _, _ in changed[start:]:
                report.failures[contact_id] = f"not pushed: {exc}"
            break
        accepted = set(outcome.updated)
        ledger.record(
            (contact_id, value) for contact_id, _, value in batch if contact_id in accepted
        )
        report.pushed += len(accepted)
        report.failures.update(outcome.failed)
    report.calls = client.stats.calls
    report.retries = dict(client.stats.retries)
    return report


def describe(report: SyncReport) -> str:
    """The report in a few lines, for logs and the command line."""
    if report.dry_run:
        lines = [f"would push {report.to_push:,}, unchanged {report.unchanged:,} (dry run)"]
    else:
        lines = [
            f"pushed {report.pushed:,}, unchanged {report.unchanged:,}, failed {report.failed:,}"
        ]
    for reason, count in Counter(report.failures.values()).most_common(5):
        lines.append(f"  {count:,} failed: {reason}")
    if report.retries:
        retried = ", ".join(f"{count} after {cause}" for cause, count in report.retries.items())
        lines.append(f"retries: {retried}")
    if report.stopped:
        lines.append(f"stopped early: {report.stopped}")
    return "\n".join(lines)
