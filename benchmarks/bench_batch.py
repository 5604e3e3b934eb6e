"""Batch scoring throughput: `POST /score/batch` end to end, and scoring in-process.

    python benchmarks/bench_batch.py                    # trains on 93,000 leads first (~1 min)
    python benchmarks/bench_batch.py --data-dir data    # the model an existing pipeline run made

The leads are the first rows of the pipeline's own `lead_scoring_features.csv` (all eight input
fields, plus `contact_id` and `email`, as a CRM export would send them).

- End to end: `uvicorn leadscore_api.main:app` (one worker, uvicorn defaults) on 127.0.0.1 under
  wrk, one connection, `--duration` seconds per batch size (1,000 and 10,000 leads per request);
  rows/s = requests/s x leads per request. Needs `wrk` (`sudo apt-get install -y wrk`).
- In-process, by stage, for the same batches: parsing and validating the body as columns,
  scoring (`score_columns`: feature matrix, prediction, results), encoding the response, and the
  model alone (`LoadedModel.predict_proba` on input columns: feature matrix + prediction); the
  model alone on 100,000 rows on one core (compiled predictor and XGBoost); and what an
  explanation costs per lead, alone and in a batch of 1,000.

Targets: >= 200,000 rows/s end to end; the model alone >= 1,000,000 rows/s on one core.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import bench_api
import common

TARGET_ROWS_PER_SECOND = 200_000
TARGET_MODEL_ROWS_PER_SECOND = 1_000_000
INTEGER_FIELDS = ("sessions", "engaged_sessions", "page_views", "distinct_channels")
FLOAT_FIELDS = ("total_engagement_seconds", "days_active_span")


def leads_from_features_csv(path: Path, n: int) -> list[dict]:
    leads = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            lead: dict = {"contact_id": int(row["contact_id"]), "email": row["email"]}
            for name in INTEGER_FIELDS:
                lead[name] = int(row[name])
            for name in FLOAT_FIELDS:
                lead[name] = float(row[name])
            lead["channel"] = row["channel"]
            lead["is_first_visit"] = row["is_first_visit"] == "true"
            leads.append(lead)
            if len(leads) == n:
                break
    if len(leads) < n:
        raise SystemExit(f"{path} has only {len(leads)} leads; {n} needed")
    return leads


def best_of(function, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def in_process(data_dir: Path, bodies: dict[int, bytes], leads: list[dict]) -> dict:
    from pydantic_core import to_json

    from leadscore_api.batch import columnar_batch
    from leadscore_api.parsing import parse_body
    from leadscore_api.schemas import ScoreRequest
    from leadscore_api.scoring import score_columns, score_leads
    from leadscore_api.settings import ApiSettings
    from leadscore_core.artifact import load_model

    model_path = common.published_model(data_dir)
    # As the service loads it: with the compiled predictor published beside the file, if any.
    model = load_model(model_path, nthread=1, compiled_dir=model_path.parent)
    xgboost = load_model(model_path, nthread=1)
    max_batch = ApiSettings().max_batch
    threshold = ApiSettings().high_threshold
    results: dict = {"predictor": model.predictor.kind}
    for size, body in bodies.items():
        repeats = max(3, 200_000 // size)
        columns, _ = columnar_batch(body, max_batch)
        scored, scores = score_columns(model, columns, threshold, False)
        encoded = to_json({"model_version": model.version, "results": scored})
        timings = {
            "parse_and_validate": best_of(lambda b=body: columnar_batch(b, max_batch), repeats),
            "score_columns": best_of(
                lambda c=columns: score_columns(model, c, threshold, False), repeats
            ),
            "encode_response": best_of(
                lambda s=scored: to_json({"model_version": model.version, "results": s}), repeats
            ),
            "model_only": best_of(lambda c=columns: model.predict_proba(c.inputs), repeats),
        }
        timings["service_path"] = (
            timings["parse_and_validate"] + timings["score_columns"] + timings["encode_response"]
        )
        results[size] = {
            "seconds": timings,
            "rows_per_second": {k: size / v for k, v in timings.items()},
            "response_bytes": len(encoded),
        }
    # The model alone on 100,000 rows, one core: prediction of a ready matrix, and matrix +
    # prediction, with the served predictor and with XGBoost (one thread).
    columns, _ = columnar_batch(bodies[max(bodies)], max_batch)
    size = 100_000
    reps = (size + len(columns) - 1) // len(columns)
    big = {k: (v * reps)[:size] for k, v in columns.inputs.items()}
    matrix = model.matrix(big)
    results["model_only_100000"] = {
        name: {"rows_per_second": size / best_of(function, 3)}
        for name, function in {
            "predict_matrix": lambda: model.predict_matrix(matrix),
            "feature_matrix_and_predict": lambda: model.predict_proba(big),
            "xgboost_predict_matrix": lambda: xgboost.predict_matrix(matrix),
        }.items()
    }
    # Explanations (exact tree SHAP) against plain scores, per lead.
    lead = parse_body(ScoreRequest, json.dumps(leads[0]).encode())
    thousand, _ = columnar_batch(bodies[min(bodies)], max_batch)
    results["explain_us_per_lead"] = {
        "one_lead_plain": best_of(lambda: score_leads(model, [lead], threshold, False), 2000) * 1e6,
        "one_lead_explained": best_of(lambda: score_leads(model, [lead], threshold, True), 200)
        * 1e6,
        f"batch_{len(thousand)}_plain": best_of(
            lambda: score_columns(model, thousand, threshold, False), 20
        )
        * 1e6
        / len(thousand),
        f"batch_{len(thousand)}_explained": best_of(
            lambda: score_columns(model, thousand, threshold, True), 5
        )
        * 1e6
        / len(thousand),
    }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_model_arguments(parser)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per batch size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument(
        "--no-access-log", action="store_true", help="start uvicorn with its access log off"
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=common.REPO_ROOT,
        help="serve another checkout of leadscore, to compare (run the script with PYTHONPATH "
        "set to it as well for the in-process numbers)",
    )
    args = parser.parse_args(argv)

    wrk = bench_api.need_wrk()
    machine = common.machine_description()
    common.print_machine(machine)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="leadscore-bench-batch-"))
    data_dir = common.ensure_trained(args.data_dir, args.leads, work_dir).resolve()

    leads = leads_from_features_csv(data_dir / "lead_scoring_features.csv", max(args.sizes))
    bodies = {size: json.dumps({"leads": leads[:size]}).encode() for size in args.sizes}
    body_dir = work_dir / "bodies"
    body_dir.mkdir(parents=True, exist_ok=True)
    for size, body in bodies.items():
        (body_dir / f"batch-{size}.json").write_bytes(body)

    print("in-process ...", flush=True)
    local = in_process(data_dir, bodies, leads)

    servers = bench_api.start_servers(
        data_dir,
        work_dir / "logs",
        ["score"],
        access_log=not args.no_access_log,
        source=args.source.resolve(),
    )
    service, base = servers["score"]
    http = {}
    try:
        expected = _expected_scores(data_dir, leads[: min(args.sizes)])
        status, payload = bench_api.post(base + "/score/batch", bodies[min(args.sizes)])
        answer = json.loads(payload)
        assert status == 200, payload[:200]
        got = [r["score"] for r in answer["results"]]
        assert max(abs(a - b) for a, b in zip(got, expected, strict=True)) < 1e-6
        for size in args.sizes:
            body_file = body_dir / f"batch-{size}.json"
            bench_api.run_wrk(wrk, base + "/score/batch", body_file, 1, 2)  # warm-up
            result = bench_api.measure(
                wrk, service, base + "/score/batch", body_file, 1, args.duration
            )
            result["rows_per_second"] = result["requests_per_second"] * size
            result["body_bytes"] = len(bodies[size])
            http[size] = result
            print(
                f"/score/batch {size:>6,} leads: {result['requests_per_second']:.1f} req/s = "
                f"{result['rows_per_second']:,.0f} rows/s, p50 "
                f"{result['latency_us']['percentiles']['50'] / 1000:.1f} ms, p99 "
                f"{result['latency_us']['percentiles']['99'] / 1000:.1f} ms, "
                f"errors {result['errors_total']}",
                flush=True,
            )
    finally:
        service.stop()

    print_table(http, local, args.sizes)
    path = common.save_results(
        "batch",
        {
            "machine": machine,
            "load_average_at_end": common.load_average(),
            "command": " ".join(["python", "benchmarks/bench_batch.py", *(argv or sys.argv[1:])]),
            "access_log": not args.no_access_log,
            "source": str(args.source),
            "model": str(common.published_model(data_dir)),
            "http": http,
            "in_process": local,
        },
    )
    print(f"\nresults: {path.relative_to(common.REPO_ROOT)}")
    if args.work_dir is None and args.data_dir is None:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0


def _expected_scores(data_dir: Path, leads: list[dict]) -> list[float]:
    from leadscore_api.schemas import Lead
    from leadscore_api.scoring import input_columns
    from leadscore_core.artifact import load_model

    model = load_model(common.published_model(data_dir))
    return model.predict_proba(
        input_columns([Lead.model_validate(lead) for lead in leads])
    ).tolist()


def print_table(http: dict, local: dict, sizes: list[int]) -> None:
    print(f"\npredictor: {local['predictor']}")
    print("\n| leads per request | end to end (HTTP) | p50 | p99 | target ≥ 200,000 rows/s |")
    print("|---:|---:|---:|---:|---|")
    for size in sizes:
        r = http[size]
        met = "met" if r["rows_per_second"] >= TARGET_ROWS_PER_SECOND else "MISSED"
        print(
            f"| {size:,} | {r['rows_per_second']:,.0f} rows/s | "
            f"{r['latency_us']['percentiles']['50'] / 1000:.1f} ms | "
            f"{r['latency_us']['percentiles']['99'] / 1000:.1f} ms | {met} |"
        )
    print(
        "\n| leads | parse + validate (columns) | score_columns | encode | service path "
        "in-process | model only (matrix + predict) |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for size in sizes:
        rows = local[size]["rows_per_second"]
        print(
            f"| {size:,} | {rows['parse_and_validate']:,.0f} rows/s | "
            f"{rows['score_columns']:,.0f} rows/s | {rows['encode_response']:,.0f} rows/s | "
            f"{rows['service_path']:,.0f} rows/s | {rows['model_only']:,.0f} rows/s |"
        )
    print("\n| model alone, 100,000 rows, one core | rows/s | target ≥ 1,000,000 |")
    print("|---|---:|---|")
    for name, value in local["model_only_100000"].items():
        met = "met" if value["rows_per_second"] >= TARGET_MODEL_ROWS_PER_SECOND else "MISSED"
        print(f"| {name} | {value['rows_per_second']:,.0f} | {met} |")
    print("\n| µs per lead | |\n|---|---:|")
    for name, value in local["explain_us_per_lead"].items():
        print(f"| {name} | {value:,.1f} |")


if __name__ == "__main__":
    raise SystemExit(main())
