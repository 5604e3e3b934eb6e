"""Shared pieces of the benchmark scripts: the machine description, process-tree memory sampling,
running the real pipeline into a data directory, and child processes on free ports.

Linux only (reads /proc), like the deployment target. Nothing here downloads anything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# One process manager for tests and benchmarks: the tests' (tests/integration/processes.py).
sys.path.insert(0, str(REPO_ROOT / "tests"))
from integration.processes import ManagedProcess, free_port, wait_until  # noqa: E402

__all__ = ["free_port"]
BENCH_DIR = REPO_ROOT / "benchmarks"
RESULTS_DIR = BENCH_DIR / "results"
BIN = Path(sys.executable).parent
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

LIBRARIES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "pydantic",
    "pydantic-core",
    "numpy",
    "xgboost",
    "mlflow",
    "dagster",
    "dagster-dbt",
    "dbt-core",
    "dbt-duckdb",
    "duckdb",
    "pyarrow",
    "pandas",
)


# --- the machine ---------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def total_memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def busy_processes(min_cpu_seconds_per_second: float = 0.2, window: float = 1.0) -> list[str]:
    """Processes that used more than the given share of a core over `window` seconds (other
    load on the machine that could disturb a measurement), excluding this process tree."""

    def cpu_times() -> dict[int, tuple[float, str]]:
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            ticks = int(fields[11]) + int(fields[12])
            found[int(entry.name)] = (ticks / os.sysconf("SC_CLK_TCK"), name)
        return found

    mine = {os.getpid(), *descendants(os.getpid())}
    before = cpu_times()
    time.sleep(window)
    after = cpu_times()
    busy = []
    for pid, (seconds, name) in after.items():
        if pid in mine or pid not in before:
            continue
        share = (seconds - before[pid][0]) / window
        if share >= min_cpu_seconds_per_second:
            busy.append(f"{name} ({share:.0%} of a core)")
    return busy


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def machine_description() -> dict[str, object]:
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(total_memory_gib(), 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "libraries": library_versions(),
        "load_average_at_start": [round(x, 2) for x in load_average()],
        "other_busy_processes_at_start": busy_processes(),
    }


def print_machine(machine: Mapping[str, object]) -> None:
    print(
        f"machine: {machine['cpu_model']}, {machine['cores']} cores, "
        f"{machine['memory_gib']} GiB RAM, Linux {machine['kernel']}, Python {machine['python']}"
    )
    print(f"load average at start: {machine['load_average_at_start']}")
    busy = machine["other_busy_processes_at_start"]
    print(f"other busy processes at start: {', '.join(busy) if busy else 'none'}")  # type: ignore[arg-type]


def portable(text: str) -> str:
    """Results without this machine's paths: the checkout as `.`, temporary dirs as `$TMPDIR`."""
    text = text.replace(str(REPO_ROOT), ".")
    return text.replace(tempfile.gettempdir().rstrip("/"), "$TMPDIR")


def save_results(name: str, results: Mapping[str, object]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    path.write_text(portable(json.dumps(results, indent=2, default=str)) + "\n")
    return path


# --- memory of a process tree -----------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    """All live descendants of `pid` (via /proc/<pid>/task/<tid>/children)."""
    found: list[int] = []
    stack = [pid]
    while stack:
        parent = stack.pop()
        try:
            tasks = list(Path(f"/proc/{parent}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in children:
                found.append(int(child))
                stack.append(int(child))
    return found


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


@dataclass
class TreeMemorySampler:
    """Samples the summed RSS of a process and all its descendants in a background thread.

    The peak is the largest sum seen at one instant (so a subprocess that runs while its parent
    holds memory is counted together with it); `interval` bounds how short a spike can be missed.
    """

    pid: int
    interval: float = 0.05
    peak_bytes: int = 0
    peak_processes: int = 0
    samples: int = 0
    timeline: list[tuple[float, int]] = field(default_factory=list)  # (unix time, bytes)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> TreeMemorySampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = [self.pid, *descendants(self.pid)]
            total = sum(rss_bytes(p) for p in pids)
            self.timeline.append((time.time(), total))
            self.samples += 1
            if total > self.peak_bytes:
                self.peak_bytes, self.peak_processes = total, len(pids)
            self._stop.wait(self.interval)


# --- child processes -----------------------------------------------------------------------------


class Service(ManagedProcess):
    """A server process (the tests' ManagedProcess: own process group, log file, a stop that
    leaves nothing), plus what the benchmarks measure: readiness and the CPU of its tree."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path = REPO_ROOT,
    ) -> None:
        super().__init__(name, command, env=env, log_path=log_path, cwd=cwd)

    def wait_ready(self, url: str, timeout: float = 120.0) -> None:
        import urllib.error
        import urllib.request

        def ready() -> bool | None:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    return True if response.status == 200 else None
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return None

        wait_until(ready, timeout=timeout, what=f"{self.name} at {url}", still_running=self)

    def process_tree(self) -> list[int]:
        return [self.process.pid, *descendants(self.process.pid)]


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Which model the service benchmarks serve: an existing run's, or a fresh 93k-lead run's."""
    parser.add_argument("--data-dir", type=Path, help="an existing pipeline run's data directory")
    parser.add_argument(
        "--leads", type=int, default=93_000, help="leads to train on (no --data-dir)"
    )
    parser.add_argument("--work-dir", type=Path, help="where a fresh pipeline run goes")


# --- the pipeline --------------------------------------------------------------------------


def pipeline_env(
    data_dir: Path,
    leads: int,
    extra: Mapping[str, str] | None = None,
    source: Path = REPO_ROOT,
) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "LEADSCORE_DATA_DIR": str(data_dir),
            "DAGSTER_HOME": str(data_dir / "dagster"),
            "LEADSCORE_SYNTHETIC_LEADS": str(leads),
            # The generator seeds the empty landing/ only in demo mode.
            "LEADSCORE_DEMO_MODE": "true",
            # The default store, in this data directory, whatever the caller's shell has set.
            "MLFLOW_TRACKING_URI": f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}",
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    env.pop("LEADSCORE_MODEL_PATH", None)
    if source != REPO_ROOT:
        # Another checkout of leadscore (e.g. an older commit, to compare): import it first.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def prepare_manifest(env: Mapping[str, str] | None = None, source: Path = REPO_ROOT) -> None:
    """`leadscore prepare`, as `make materialize` runs it before the job: with the same
    LEADSCORE_DATA_DIR, so the profile dbt hashes is the one the run uses and `dbt build` can
    parse partially (a different profile forces a full re-parse, ~3 s)."""
    subprocess.run(
        [sys.executable, "-m", "leadscore_assets.cli", "prepare"],
        cwd=source,
        env=dict(env) if env is not None else None,
        check=True,
        stdout=subprocess.DEVNULL,
    )


@dataclass
class PipelineRun:
    leads: int
    data_dir: Path
    wall_seconds: float
    peak_tree_rss_bytes: int
    peak_tree_processes: int
    max_process_rss_bytes: int
    run_id: str
    run_seconds: float
    steps: dict[str, float]
    step_status: dict[str, str]
    step_peak_rss_bytes: dict[str, int]
    success: bool
    log_path: Path


def run_pipeline(
    data_dir: Path,
    leads: int,
    extra_env: Mapping[str, str] | None = None,
    source: Path = REPO_ROOT,
) -> PipelineRun:
    """`dagster job execute -j retrain_job` exactly as the Makefile runs it, into `data_dir`
    (fresh landing files from the generator when `landing/` is empty), timed and memory-sampled."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "dagster").mkdir(exist_ok=True)
    env = pipeline_env(data_dir, leads, extra_env, source)
    prepare_manifest(env, source)
    log_path = data_dir / f"pipeline-{leads}.log"
    command = [
        str(BIN / "dagster"),
        "job",
        "execute",
        "-m",
        "leadscore_assets.definitions",
        "-j",
        "retrain_job",
    ]
    with log_path.open("wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, env=env, cwd=source, stdout=log, stderr=subprocess.STDOUT
        )
        with TreeMemorySampler(process.pid) as sampler:
            # wait4 reports the largest RSS of the child and its reaped descendants.
            _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
    run_id, run_seconds, steps, step_status, windows = _step_durations(data_dir / "dagster")
    step_peaks = {
        step: max((b for t, b in sampler.timeline if start <= t <= end), default=0)
        for step, (start, end) in windows.items()
    }
    return PipelineRun(
        leads=leads,
        data_dir=data_dir,
        wall_seconds=wall,
        peak_tree_rss_bytes=sampler.peak_bytes,
        peak_tree_processes=sampler.peak_processes,
        max_process_rss_bytes=usage.ru_maxrss * 1024,
        run_id=run_id,
        run_seconds=run_seconds,
        steps=steps,
        step_status=step_status,
        step_peak_rss_bytes=step_peaks,
        success=process.returncode == 0 and all(s == "SUCCESS" for s in step_status.values()),
        log_path=log_path,
    )


def _step_durations(
    dagster_home: Path,
) -> tuple[str, float, dict[str, float], dict[str, str], dict[str, tuple[float, float]]]:
    """Per-step wall time (and start/end) of the latest run, from the Dagster event log."""
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs(limit=1)
        if not runs:
            return "", float("nan"), {}, {}, {}
        run = runs[0]
        stats = instance.get_run_stats(run.run_id)
        steps, status, windows = {}, {}, {}
        for step in sorted(
            instance.get_run_step_stats(run.run_id), key=lambda s: s.start_time or 0
        ):
            if step.start_time is not None and step.end_time is not None:
                steps[step.step_key] = step.end_time - step.start_time
                windows[step.step_key] = (step.start_time, step.end_time)
            status[step.step_key] = step.status.value if step.status else "UNKNOWN"
        run_seconds = (
            stats.end_time - stats.start_time
            if stats.start_time is not None and stats.end_time is not None
            else float("nan")
        )
        return run.run_id, run_seconds, steps, status, windows


def published_model(data_dir: Path) -> Path:
    return data_dir / "models" / "lead_scoring_model.json"


def ensure_trained(data_dir: Path | None, leads: int, work_dir: Path) -> Path:
    """A data directory holding a model trained and published by the real pipeline: the given
    one (checked), or a fresh run on `leads` synthetic leads under `work_dir`."""
    if data_dir is not None:
        if not published_model(data_dir).exists():
            raise SystemExit(f"{data_dir} holds no published model ({published_model(data_dir)})")
        return data_dir
    data_dir = work_dir / f"pipeline-{leads}"
    if published_model(data_dir).exists():
        return data_dir
    if data_dir.exists():
        shutil.rmtree(data_dir)
    print(f"training a model with the real pipeline on {leads:,} synthetic leads ...", flush=True)
    run = run_pipeline(data_dir, leads)
    if not run.success:
        raise SystemExit(f"the pipeline failed; log: {run.log_path}")
    print(f"pipeline done in {run.wall_seconds:.1f} s", flush=True)
    return data_dir


def gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"
