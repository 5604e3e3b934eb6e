"""Scoring service throughput and latency under wrk, against `mlflow models serve` and a no-op.

    python benchmarks/bench_api.py                      # trains on 93,000 leads first (~1 min)
    python benchmarks/bench_api.py --data-dir data      # the model an existing pipeline run made

Needs `wrk` (Debian/Ubuntu: `sudo apt-get install -y wrk`). Three servers run on 127.0.0.1, each
a single uvicorn worker (uvloop, httptools, access log on):

- `score`:  `leadscore-api`, the service as `make serve` runs it (uvicorn with the service's
            connection settings), `POST /score`;
- `noop`:   `python benchmarks/noop_app.py`, the same app served the same way plus `POST /noop`,
            which parses and validates the same body the same way and returns a constant
            (benchmarks/noop_app.py): the ceiling of this stack;
- `mlflow`: `mlflow models serve -m models:/lead_scoring@champion --env-manager local`, the model
            the same pipeline run logged and registered, `POST /invocations` with the same lead
            as a one-row `dataframe_split` of the model's feature columns. The script records
            the worker count mlflow starts (its `--workers` default is 1).

Every server is checked to answer the lead correctly (the same probability) before it is loaded.
Each case is wrk with one thread for `--duration` seconds after a 2 s warm-up, at 1 and 16
connections; the cases are interleaved over `--rounds` rounds and the median round is reported.
Reported: requests/s, p50/p99 latency, errors (socket errors and non-2xx answers), CPU time the
server process used per request, and the ratios the targets are stated in:
/score >= 20x mlflow's requests/s at 16 connections, >= 85% of the no-op's at 1 and 16
connections, p99 < 2 ms at one connection.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import common

from leadscore_core.features import EXAMPLE_LEAD

WRK_SCRIPT = common.BENCH_DIR / "wrk_post.lua"
SERVERS = ("score", "noop", "mlflow")
PATHS = {"score": "/score", "noop": "/noop", "mlflow": "/invocations"}
READY_PATHS = {"score": "/ready", "noop": "/ready", "mlflow": "/ping"}
TARGET_MLFLOW_RATIO = 20.0
TARGET_NOOP_RATIO = 0.85
TARGET_P99_MS = 2.0


def need_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit(
            "wrk is not installed. On Debian/Ubuntu: sudo apt-get install -y wrk "
            "(or `make bench`, which installs it when missing)."
        )
    return wrk


def mlflow_body(data_dir: Path) -> tuple[dict, float]:
    """The seed lead as mlflow's pyfunc input (one row of the model's feature columns, NaN as
    null), and the raw probability the logged booster gives it."""
    from leadscore_core.artifact import load_model

    model = load_model(common.published_model(data_dir))
    row = model.matrix({name: [value] for name, value in EXAMPLE_LEAD.items()})
    raw = float(model.booster.inplace_predict(row)[0])
    values = [None if math.isnan(v) else float(v) for v in row[0].tolist()]
    body = {"dataframe_split": {"columns": list(model.feature_names), "data": [values]}}
    return body, raw


def expected_score(data_dir: Path) -> tuple[float, str]:
    from leadscore_core.artifact import load_model

    model = load_model(common.published_model(data_dir))
    columns = {name: [value] for name, value in EXAMPLE_LEAD.items()}
    return float(model.predict_proba(columns)[0]), model.version


def start_servers(
    data_dir: Path,
    log_dir: Path,
    names: list[str],
    access_log: bool,
    source: Path = common.REPO_ROOT,
) -> dict[str, tuple]:
    env = common.pipeline_env(data_dir, 0, source=source)
    env.pop("LEADSCORE_SYNTHETIC_LEADS")
    no_access_log = [] if access_log else ["--no-access-log"]
    if not access_log:
        env["UVICORN_ACCESS_LOG"] = "false"  # mlflow's uvicorn reads UVICORN_* for its options
    commands = {
        # Served as `make serve` serves it: `leadscore-api` (uvicorn with the service's settings).
        "score": [str(common.BIN / "leadscore-api"), *no_access_log],
        "noop": [sys.executable, str(common.BENCH_DIR / "noop_app.py"), *no_access_log],
        "mlflow": [
            str(common.BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            "models:/lead_scoring@champion",
            "--env-manager",
            "local",
        ],
    }
    servers = {}
    for name, command in commands.items():
        if name not in names:
            continue
        port = common.free_port()
        command = [*command, "--host", "127.0.0.1", "--port", str(port)]
        service = common.Service(name, command, env, log_dir / f"{name}.log", cwd=source)
        servers[name] = (service, f"http://127.0.0.1:{port}")
    for name, (service, base) in servers.items():
        service.wait_ready(base + READY_PATHS[name])
    return servers


def post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


def check_answers(servers: dict, bodies: dict[str, bytes], data_dir: Path) -> dict[str, object]:
    """Each server answers the benchmark body correctly, or the benchmark stops."""
    score, version = expected_score(data_dir)
    _, raw = mlflow_body(data_dir)
    answers = {}
    for name, (_, base) in servers.items():
        status, payload = post(base + PATHS[name], bodies[name])
        answer = json.loads(payload)
        answers[name] = answer
        if status != 200:
            raise SystemExit(f"{name} answered {status}: {payload[:200]!r}")
        if name == "score":
            assert abs(answer["score"] - score) < 1e-6 and answer["model_version"] == version, (
                answer
            )
        if name == "mlflow":
            assert abs(answer["predictions"][0] - raw) < 1e-6, (answer, raw)
    return answers


def uvicorn_workers(service: common.Service) -> dict[str, object]:
    """What the server process tree looks like: processes, and the server's command line."""
    tree = service.process_tree()
    commands = []
    for pid in tree:
        try:
            commands.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            pass
    uvicorn = [c for c in commands if "uvicorn" in c] or commands
    return {"processes": len(tree), "server_command": uvicorn[0].strip() if uvicorn else None}


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def run_wrk(
    wrk: str, url: str, body_file: Path, connections: int, seconds: float
) -> dict[str, object]:
    output = subprocess.run(
        [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--latency",
            "--timeout",
            "5s",
            "-s",
            str(WRK_SCRIPT),
            url,
            "--",
            str(body_file),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"^BENCH_JSON (.*)$", output, re.MULTILINE)
    if not match:
        raise RuntimeError(f"no summary in wrk output:\n{output}")
    result = json.loads(match.group(1))
    result["requests_per_second"] = result["requests"] / (result["duration_us"] / 1e6)
    result["errors_total"] = sum(result["errors"].values())
    return result


def measure(
    wrk: str, service: common.Service, url: str, body_file: Path, connections: int, seconds: float
) -> dict[str, object]:
    pids = service.process_tree()
    before = cpu_seconds(pids)
    result = run_wrk(wrk, url, body_file, connections, seconds)
    used = cpu_seconds(pids) - before
    result["server_cpu_us_per_request"] = used / max(result["requests"], 1) * 1e6
    result["server_cpu_share"] = used / (result["duration_us"] / 1e6)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_model_arguments(parser)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per case")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--rounds", type=int, default=1, help="interleaved repetitions")
    parser.add_argument(
        "--servers",
        nargs="+",
        choices=SERVERS,
        default=list(SERVERS),
        help="measure only these (the ratios need all three)",
    )
    parser.add_argument(
        "--no-access-log",
        action="store_true",
        help="start all three servers with uvicorn's access log off (default: on, as deployed)",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=common.REPO_ROOT,
        help="serve another checkout of leadscore (e.g. an export of an older commit), to compare",
    )
    args = parser.parse_args(argv)

    wrk = need_wrk()
    machine = common.machine_description()
    common.print_machine(machine)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="leadscore-bench-api-"))
    data_dir = common.ensure_trained(args.data_dir, args.leads, work_dir)
    data_dir = data_dir.resolve()

    body_dir = work_dir / "bodies"
    body_dir.mkdir(parents=True, exist_ok=True)
    lead = json.dumps(EXAMPLE_LEAD).encode()
    bodies = {"score": lead, "noop": lead, "mlflow": json.dumps(mlflow_body(data_dir)[0]).encode()}
    body_files = {}
    for name, body in bodies.items():
        body_files[name] = body_dir / f"{name}.json"
        body_files[name].write_bytes(body)

    servers = start_servers(
        data_dir,
        work_dir / "logs",
        args.servers,
        access_log=not args.no_access_log,
        source=args.source.resolve(),
    )
    results: dict[str, dict[int, list[dict]]] = {
        s: {c: [] for c in args.connections} for s in args.servers
    }
    try:
        answers = check_answers(servers, bodies, data_dir)
        topology = {name: uvicorn_workers(service) for name, (service, _) in servers.items()}
        for name, (_, base) in servers.items():
            run_wrk(wrk, base + PATHS[name], body_files[name], 1, 2)  # warm-up
        for round_number in range(args.rounds):
            for connections in args.connections:
                for name in args.servers:
                    service, base = servers[name]
                    result = measure(
                        wrk,
                        service,
                        base + PATHS[name],
                        body_files[name],
                        connections,
                        args.duration,
                    )
                    results[name][connections].append(result)
                    print(
                        f"round {round_number + 1} {name:6s} c={connections:<3d} "
                        f"{result['requests_per_second']:8.0f} req/s  "
                        f"p50 {result['latency_us']['percentiles']['50'] / 1000:.2f} ms  "
                        f"p99 {result['latency_us']['percentiles']['99'] / 1000:.2f} ms  "
                        f"errors {result['errors_total']}  "
                        f"server CPU {result['server_cpu_us_per_request']:.0f} µs/req",
                        flush=True,
                    )
    finally:
        for service, _ in servers.values():
            service.stop()

    summary = summarise(results, args.connections)
    print_table(summary, args.connections, topology, not args.no_access_log)
    path = common.save_results(
        "api",
        {
            "machine": machine,
            "load_average_at_end": common.load_average(),
            "command": " ".join(["python", "benchmarks/bench_api.py", *(argv or sys.argv[1:])]),
            "access_log": not args.no_access_log,
            "source": str(args.source),
            "duration_s": args.duration,
            "rounds": args.rounds,
            "bodies": {k: v.decode() for k, v in bodies.items()},
            "answers": answers,
            "servers": topology,
            "model": str(common.published_model(data_dir)),
            "summary": summary,
            "all_rounds": results,
        },
    )
    print(f"\nresults: {path.relative_to(common.REPO_ROOT)}")
    if args.work_dir is None and args.data_dir is None:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0


def summarise(results: dict, connection_counts: list[int]) -> dict:
    """The median round per server and connection count, and the target ratios."""
    summary: dict = {}
    for connections in connection_counts:
        cases = {}
        for name in SERVERS:
            if name not in results:
                continue
            rounds = results[name][connections]
            median = statistics.median_low([r["requests_per_second"] for r in rounds])
            chosen = next(r for r in rounds if r["requests_per_second"] == median)
            cases[name] = {
                "requests_per_second": chosen["requests_per_second"],
                "p50_ms": chosen["latency_us"]["percentiles"]["50"] / 1000,
                "p99_ms": chosen["latency_us"]["percentiles"]["99"] / 1000,
                "errors": sum(r["errors_total"] for r in rounds),
                "requests": sum(r["requests"] for r in rounds),
                "server_cpu_us_per_request": chosen["server_cpu_us_per_request"],
                "rounds_requests_per_second": [r["requests_per_second"] for r in rounds],
            }
        summary[str(connections)] = cases
        if len(cases) < len(SERVERS):
            continue
        score = cases["score"]
        cases["ratios"] = {
            "score_vs_mlflow": score["requests_per_second"]
            / cases["mlflow"]["requests_per_second"],
            "score_vs_noop": score["requests_per_second"] / cases["noop"]["requests_per_second"],
            "score_vs_noop_cpu": cases["noop"]["server_cpu_us_per_request"]
            / score["server_cpu_us_per_request"],
        }
    return summary


def print_table(
    summary: dict, connection_counts: list[int], topology: dict, access_log: bool
) -> None:
    print(f"\naccess log: {'on' if access_log else 'off'}")
    for name, info in topology.items():
        print(f"{name}: {info['processes']} process(es); {info['server_command']}")
    print("\n| connections | server | requests/s | p50 | p99 | errors | server CPU per request |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for connections in connection_counts:
        cases = summary[str(connections)]
        for name in SERVERS:
            if name not in cases:
                continue
            case = cases[name]
            print(
                f"| {connections} | {name} `{PATHS[name]}` | {case['requests_per_second']:,.0f} | "
                f"{case['p50_ms']:.2f} ms | {case['p99_ms']:.2f} ms | {case['errors']} | "
                f"{case['server_cpu_us_per_request']:.0f} µs |"
            )
    print(
        "\n| connections | /score ÷ mlflow (target ≥ 20× at 16) | /score ÷ no-op (target ≥ 85%) | "
        "no-op ÷ /score CPU per request | /score p99 |"
    )
    print("|---:|---:|---:|---:|---:|")
    for connections in connection_counts:
        cases = summary[str(connections)]
        if "ratios" not in cases:
            continue
        ratios = cases["ratios"]
        p99 = cases["score"]["p99_ms"]
        p99_cell = f"{p99:.2f} ms"
        if connections == 1:
            p99_cell += f" ({'met' if p99 < TARGET_P99_MS else 'MISSED'}: < {TARGET_P99_MS:g} ms)"
        mlflow_met = ratios["score_vs_mlflow"] >= TARGET_MLFLOW_RATIO
        mlflow_cell = f"{ratios['score_vs_mlflow']:.1f}×"
        if connections == 16:
            mlflow_cell += f" ({'met' if mlflow_met else 'MISSED'})"
        noop_met = ratios["score_vs_noop"] >= TARGET_NOOP_RATIO
        print(
            f"| {connections} | {mlflow_cell} | {ratios['score_vs_noop']:.0%} "
            f"({'met' if noop_met else 'MISSED'}) | {ratios['score_vs_noop_cpu']:.0%} | "
            f"{p99_cell} |"
        )


if __name__ == "__main__":
    raise SystemExit(main())
