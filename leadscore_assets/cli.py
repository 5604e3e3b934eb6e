"""`leadscore`: small command-line tools around the pipeline.

leadscore prepare                      parse the dbt project (dagster-dbt needs the manifest)
leadscore instance                     install deploy/dagster.yaml into $DAGSTER_HOME (storage:
                                       LEADSCORE_DAGSTER_STORAGE, sqlite or postgres)
leadscore dbt-vars                     the --vars the pipeline runs dbt with (to run dbt by hand)
leadscore generate --leads N [--batch NAME] [--first-contact-id ID]
                                       write synthetic exports into landing/
leadscore synthetic-report --leads N   the generator's true conversion model, measured
leadscore compare-feature-sets         the seed's four features against the default set, each
                                       with the seed's and tuned settings, on the current
                                       features CSV, both holdouts
leadscore crm create-properties | sync HubSpot write-back (leadscore_assets/crm/commands.py)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from leadscore_assets.crm.commands import add_crm_commands
from leadscore_assets.settings import CALIBRATION_CHOICES

console = Console()


def _prepare(_: argparse.Namespace) -> None:
    from leadscore_assets.project import prepare_manifest
    from leadscore_assets.settings import PipelineSettings

    with console.status("parsing the dbt project"):
        path = prepare_manifest(PipelineSettings())
    console.print(f"dbt manifest ready: {path}")


def _instance(_: argparse.Namespace) -> None:
    from leadscore_assets.instance import install
    from leadscore_assets.settings import PipelineSettings

    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise SystemExit("set DAGSTER_HOME to the Dagster instance's directory")
    storage = PipelineSettings().dagster_storage
    console.print(
        f"Dagster instance settings ({storage} storage): {install(Path(home), storage=storage)}"
    )


def _dbt_vars(_: argparse.Namespace) -> None:
    from leadscore_assets.project import dbt_vars
    from leadscore_assets.settings import PipelineSettings

    print(json.dumps(dbt_vars(PipelineSettings()), sort_keys=True))


def _generate(args: argparse.Namespace) -> None:
    from leadscore_assets.demo.files import write_landing
    from leadscore_assets.demo.generator import generate
    from leadscore_assets.settings import PipelineSettings

    settings = PipelineSettings()
    leads = args.leads or settings.synthetic_leads
    seed = settings.synthetic_seed if args.seed is None else args.seed
    started = time.perf_counter()
    with console.status(f"generating {leads:,} leads (seed {seed})"):
        export = generate(leads, seed, first_contact_id=args.first_contact_id)
        written = write_landing(export, settings.landing_dir, batch=args.batch)
    for path in written:
        console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    console.print(
        f"{leads:,} leads, {export.sessions.num_rows:,} sessions, {export.deals.num_rows:,} deals "
        f"in {time.perf_counter() - started:.1f} s"
    )


def _synthetic_report(args: argparse.Namespace) -> None:
    from leadscore_assets.demo.truth import measure

    with console.status(f"generating and measuring {args.leads:,} leads"):
        stats = measure(args.leads, args.seed)
    table = Table(title=f"Synthetic data, {args.leads:,} leads, seed {args.seed}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for name, value in stats.items():
        table.add_row(name, f"{value:.4f}" if isinstance(value, float) else f"{value:,}")
    console.print(table)


def _compare_feature_sets(args: argparse.Namespace) -> None:
    from sklearn.metrics import roc_auc_score

    from leadscore_assets.defs.training.evaluation import classification_metrics
    from leadscore_assets.defs.training.training import read_features_csv, train
    from leadscore_assets.defs.training.tuning import TuningBudget
    from leadscore_assets.project import channel_groups
    from leadscore_assets.settings import PipelineSettings
    from leadscore_core.features import FEATURE_SETS, LABEL_COLUMN

    settings = PipelineSettings()
    budget = TuningBudget(
        args.tuning_trials if args.tuning_trials is not None else settings.tuning_trials,
        args.tuning_seconds or settings.tuning_timeout_seconds,
    )
    frame = read_features_csv(settings.features_csv_path)
    columns = ("roc_auc", "pr_auc", "brier", "log_loss", "lift_top_10pct", "recall_top_10pct")
    table = Table(
        title=f"{settings.features_csv_path.name}: {len(frame):,} leads; search budget "
        f"{budget.trials} trials or {budget.timeout_seconds:g} s"
    )
    for heading in (
        "feature set",
        "settings",
        "holdout",
        "calibration",
        *columns,
        "roc_auc_required_only",
        "search",
        "training s",
    ):
        table.add_column(heading, justify="right")
    for split in ("random", "time"):
        for feature_set in FEATURE_SETS:
            for tuning in (None, budget) if budget.trials else (None,):
                what = "tuned" if tuning else "seed"
                with console.status(f"training {feature_set}, {what} settings, {split} split"):
                    trained = train(
                        frame,
                        feature_set=feature_set,
                        split=split,
                        calibration=args.calibration,
                        categories={"channel": channel_groups()},
                        tuning=tuning,
                        nthread=settings.training_threads,
                    )
                holdout = trained.test_rows
                metrics = classification_metrics(holdout[LABEL_COLUMN], holdout["score"])
                required_only = holdout.get("score_required_inputs_only", holdout["score"])
                kept = tuning and trained.uses_seed_settings
                table.add_row(
                    feature_set,
                    "tuned (seed's kept)" if kept else what,
                    split,
                    trained.calibration["method"],
                    *(f"{metrics[c]:.4f}" for c in columns),
                    f"{roc_auc_score(holdout[LABEL_COLUMN], required_only):.4f}",
                    _search_description(trained.tuning),
                    f"{trained.seconds:.1f}",
                )
    console.print(table)


def _search_description(search: dict | None) -> str:
    if search is None:
        return "–"
    return f"{search['trials']} trials, {search['seconds']:.0f} s ({search['stopped_by']})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="leadscore", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("prepare", help="parse the dbt project into its manifest").set_defaults(
        handler=_prepare
    )
    commands.add_parser(
        "instance", help="install deploy/dagster.yaml into $DAGSTER_HOME, with the pipeline's pool"
    ).set_defaults(handler=_instance)
    commands.add_parser(
        "dbt-vars", help="print the dbt vars the pipeline passes (JSON, for dbt --vars)"
    ).set_defaults(handler=_dbt_vars)
    generate = commands.add_parser("generate", help="write synthetic exports into landing/")
    generate.add_argument("--leads", type=int, help="default: LEADSCORE_SYNTHETIC_LEADS")
    generate.add_argument("--seed", type=int, help="default: LEADSCORE_SYNTHETIC_SEED")
    generate.add_argument("--batch", default="", help="file name suffix, e.g. 2026-11")
    generate.add_argument("--first-contact-id", type=int, default=1)
    generate.set_defaults(handler=_generate)
    report = commands.add_parser("synthetic-report", help="measure the generator's truth")
    report.add_argument("--leads", type=int, default=200_000)
    report.add_argument("--seed", type=int, default=42)
    report.set_defaults(handler=_synthetic_report)
    compare = commands.add_parser(
        "compare-feature-sets",
        help="seed vs default features, seed vs tuned settings, on the current features CSV",
    )
    compare.add_argument("--calibration", default="auto", choices=list(CALIBRATION_CHOICES))
    compare.add_argument(
        "--tuning-trials", type=int, help="default: LEADSCORE_TUNING_TRIALS; 0: seed settings only"
    )
    compare.add_argument(
        "--tuning-seconds", type=float, help="default: LEADSCORE_TUNING_TIMEOUT_SECONDS"
    )
    compare.set_defaults(handler=_compare_feature_sets)
    add_crm_commands(commands)
    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
