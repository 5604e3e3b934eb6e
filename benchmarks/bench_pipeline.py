"""Pipeline cost: wall time and peak memory of a full materialisation, per asset, by data size.

    python benchmarks/bench_pipeline.py                      # 93,000 and 1,000,000 leads
    python benchmarks/bench_pipeline.py --leads 93000 1000000 5000000
    LEADSCORE_WAREHOUSE=postgres LEADSCORE_POSTGRES_HOST=... python benchmarks/bench_pipeline.py

Each size runs `leadscore prepare` (not timed) and then
`dagster job execute -m leadscore_assets.definitions -j retrain_job` (what `make materialize`
runs) in a fresh data directory whose empty `landing/` the generator seeds, so every run includes
generating and writing the landing files. Reported per size:

- wall time of the whole command (Python start-up and loading the definitions included) and of
  the Dagster run itself;
- per-step durations from the run's event log (STEP_START to STEP_SUCCESS);
- peak RSS of the whole process tree (the dagster process plus the `dbt build` subprocess),
  sampled every 50 ms and summed at each instant, and the largest RSS of any single process
  (the kernel's high-water mark, from wait4);
- cost per lead, to check that it does not grow with size.

Targets (issue 8): 93,000 leads in < 60 s; 1,000,000 in < 3 min with peak RSS < 3 GB; cost
growing no faster than linearly.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import common

TARGET_SECONDS = {93_000: 60.0, 1_000_000: 180.0}
TARGET_RSS_BYTES = {1_000_000: 3 * 1000**3}
# Step keys of retrain_job, in order, with short names for the table.
STEP_NAMES = {
    "landing_files": "landing_files (generate + write CSV)",
    "raw_landing_tables": "raw_landing_tables (check + load)",
    "leadscore_dbt_models": "dbt build (views, mart, tests)",
    "lead_scoring_features_csv": "lead_scoring_features_csv (export)",
    "lead_scoring_model": "lead_scoring_model (train, log, register)",
    "lead_scoring_model_promotion_gate": "promotion_gate (check)",
    "published_model": "published_model",
    "lead_scores": "lead_scores (score, explain, tables, snapshot)",
    "crm_sync": "crm_sync (skipped: no HubSpot token)",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, nargs="+", default=[93_000, 1_000_000])
    parser.add_argument(
        "--work-dir", type=Path, help="where the data directories go (default: a temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    parser.add_argument(
        "--source",
        type=Path,
        default=common.REPO_ROOT,
        help="run another checkout of leadscore (e.g. an export of an older commit) with this "
        "environment, to compare",
    )
    args = parser.parse_args(argv)

    machine = common.machine_description()
    common.print_machine(machine)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="leadscore-bench-pipeline-"))
    work_dir.mkdir(parents=True, exist_ok=True)

    runs = []
    try:
        for leads in args.leads:
            data_dir = work_dir / f"pipeline-{leads}"
            if data_dir.exists():
                shutil.rmtree(data_dir)
            print(f"\n=== {leads:,} leads ===", flush=True)
            run = common.run_pipeline(data_dir, leads, source=args.source.resolve())
            runs.append(run)
            print(
                f"{'ok' if run.success else 'FAILED'}: wall {run.wall_seconds:.1f} s, "
                f"run {run.run_seconds:.1f} s, peak tree RSS {common.gb(run.peak_tree_rss_bytes)} "
                f"({run.peak_tree_processes} processes), largest process "
                f"{common.gb(run.max_process_rss_bytes)}",
                flush=True,
            )
            for step, seconds in run.steps.items():
                peak = common.gb(run.step_peak_rss_bytes.get(step, 0))
                print(f"  {STEP_NAMES.get(step, step):45s} {seconds:7.1f} s  peak RSS {peak}")
            if not run.success:
                print(f"log: {run.log_path}", file=sys.stderr)
                break
            if not args.keep:
                shutil.rmtree(data_dir, ignore_errors=True)
    finally:
        if not args.keep and args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)

    print_table(runs)
    path = common.save_results(
        "pipeline",
        {
            "machine": machine,
            "load_average_at_end": common.load_average(),
            # LEADSCORE_WAREHOUSE=postgres (with LEADSCORE_POSTGRES_*) runs it on PostgreSQL.
            "warehouse": os.environ.get("LEADSCORE_WAREHOUSE", "duckdb"),
            "command": " ".join(
                ["python", "benchmarks/bench_pipeline.py", *(argv or sys.argv[1:])]
            ),
            "source": str(args.source),
            "runs": [
                {
                    "leads": r.leads,
                    "success": r.success,
                    "wall_seconds": r.wall_seconds,
                    "run_seconds": r.run_seconds,
                    "peak_tree_rss_bytes": r.peak_tree_rss_bytes,
                    "max_process_rss_bytes": r.max_process_rss_bytes,
                    "steps": r.steps,
                    "step_peak_rss_bytes": r.step_peak_rss_bytes,
                }
                for r in runs
            ],
        },
    )
    print(f"\nresults: {path.relative_to(common.REPO_ROOT)}")
    return 0 if runs and all(r.success for r in runs) else 1


def print_table(runs: list[common.PipelineRun]) -> None:
    if not runs:
        return
    base = runs[0]
    header = "| | " + " | ".join(f"{r.leads:,} leads" for r in runs) + " |"
    print("\n" + header)
    print("|---|" + "---:|" * len(runs))

    def row(label: str, cells: list[str]) -> None:
        print(f"| {label} | " + " | ".join(cells) + " |")

    row("wall time (command)", [f"{r.wall_seconds:.1f} s" for r in runs])
    row("Dagster run", [f"{r.run_seconds:.1f} s" for r in runs])
    for step, name in STEP_NAMES.items():
        row(
            f"&nbsp;&nbsp;{name}",
            [
                f"{r.steps.get(step, float('nan')):.1f} s "
                f"({common.gb(r.step_peak_rss_bytes.get(step, 0))})"
                for r in runs
            ],
        )
    row("peak RSS, process tree", [common.gb(r.peak_tree_rss_bytes) for r in runs])
    row("largest single process", [common.gb(r.max_process_rss_bytes) for r in runs])
    row("wall µs per lead", [f"{r.wall_seconds / r.leads * 1e6:.1f}" for r in runs])
    if len(runs) > 1:
        row(
            f"per-lead cost vs {base.leads:,}",
            [f"{(r.wall_seconds / r.leads) / (base.wall_seconds / base.leads):.2f}x" for r in runs],
        )
        row(
            f"run time ratio vs {base.leads:,} (size ratio)",
            [
                f"{r.run_seconds / base.run_seconds:.1f}x ({r.leads / base.leads:.1f}x)"
                for r in runs
            ],
        )
    targets = []
    for r in runs:
        parts = []
        if r.leads in TARGET_SECONDS:
            t = TARGET_SECONDS[r.leads]
            parts.append(f"< {t:.0f} s: {'met' if r.wall_seconds < t else 'MISSED'}")
        if r.leads in TARGET_RSS_BYTES:
            t = TARGET_RSS_BYTES[r.leads]
            parts.append(f"RSS < 3 GB: {'met' if r.peak_tree_rss_bytes < t else 'MISSED'}")
        targets.append(", ".join(parts) or "–")
    row("targets", targets)


if __name__ == "__main__":
    raise SystemExit(main())
