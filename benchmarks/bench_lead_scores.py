"""The lead scores snapshot: building, writing and opening it, and looking leads up in it.

    python benchmarks/bench_lead_scores.py                     # 93,000 leads
    python benchmarks/bench_lead_scores.py --leads 93000 1000000

For each size, best of `--repeats` runs, in-process (what the pipeline and the API each do):

- `scored_leads`: validating the run's columns, deriving label and tier, encoding the reasons;
- `write_snapshot`: the SQLite file under a temporary name, the email index, fsync, rename;
- `open_snapshot`: opening and validating the file (schema, row count, SQLite's quick_check),
  what the API does on every new snapshot;
- lookups by contact id and by email (case-insensitive), the work of `GET /leads/.../score`.

The rows are synthetic but shaped like the real ones: HubSpot-style integer ids, emails, scores
from a beta distribution and three reasons of the explanation code's size. Target (issue 11):
writing ~80,000 rows well under a second.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import common
import numpy as np

from leadscore_core.lead_scores import ScoringRun, open_snapshot, scored_leads, write_snapshot

LOOKUPS = 20_000
REASONS = [
    {
        "feature": "engaged_sessions",
        "value": 4,
        "contribution": 0.7421,
        "text": "Engaged visits: 4 — raises the score",
    },
    {
        "feature": "pages_per_session",
        "value": 8.25,
        "contribution": 0.5113,
        "text": "Pages per visit: 8.25 — raises the score",
    },
    {
        "feature": "channel",
        "value": "Email",
        "contribution": -0.3092,
        "text": "First-touch channel: Email — lowers the score",
    },
]


def best_of(repeats: int, function) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def measure(leads: int, repeats: int, work_dir: Path) -> dict[str, object]:
    rng = np.random.default_rng(0)
    contact_ids = [100_000 + i for i in range(leads)]
    emails = [f"lead{i}@example.com" for i in range(leads)]
    scores = rng.beta(1.2, 4.0, leads)
    reasons = [REASONS] * leads
    features_as_of = [datetime(2026, 12, 1, 6, 0, tzinfo=UTC)] * leads
    run = ScoringRun("lead_scoring/1", "ab" * 32, datetime.now(UTC))
    path = work_dir / f"lead_scores-{leads}.sqlite"

    build_seconds, scored = best_of(
        repeats,
        lambda: scored_leads(
            run,
            contact_ids=contact_ids,
            emails=emails,
            scores=scores,
            reasons=reasons,
            features_as_of=features_as_of,
        ),
    )
    write_seconds, _ = best_of(repeats, lambda: write_snapshot(path, scored))
    open_seconds, snapshot = best_of(repeats, lambda: open_snapshot(path))
    wanted = rng.integers(0, leads, LOOKUPS)
    by_id_seconds, _ = best_of(
        repeats, lambda: [snapshot.by_contact_id(str(contact_ids[i])) for i in wanted]
    )
    by_email_seconds, _ = best_of(
        repeats, lambda: [snapshot.by_email(emails[i].upper()) for i in wanted]
    )
    return {
        "leads": leads,
        "scored_leads_seconds": round(build_seconds, 4),
        "write_snapshot_seconds": round(write_seconds, 4),
        "build_and_write_seconds": round(build_seconds + write_seconds, 4),
        "open_snapshot_seconds": round(open_seconds, 4),
        "lookup_by_id_microseconds": round(by_id_seconds / LOOKUPS * 1e6, 1),
        "lookup_by_email_microseconds": round(by_email_seconds / LOOKUPS * 1e6, 1),
        "file_megabytes": round(path.stat().st_size / 1e6, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, nargs="+", default=[93_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    machine = common.machine_description()
    common.print_machine(machine)
    results = []
    with tempfile.TemporaryDirectory(prefix="leadscore-bench-lead-scores-") as work:
        for leads in args.leads:
            print(f"{leads:,} leads ...", flush=True)
            results.append(measure(leads, args.repeats, Path(work)))
            print("  " + ", ".join(f"{k}={v}" for k, v in results[-1].items()), flush=True)
    saved = common.save_results("lead-scores", {"machine": machine, "results": results})
    print(f"results: {saved}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
