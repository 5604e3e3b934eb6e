"""Child processes for integration tests: free ports, logs in files, and a stop that leaves nothing.

Each process leads its own process group, so stopping it also stops whatever it spawned (workers,
task runners), even if the direct child has already exited.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import httpx

T = TypeVar("T")


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def log_tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


class ManagedProcess:
    """A background process whose output goes to `log_path`; `stop()` ends its whole group."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                list(command),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def exited(self) -> bool:
        return self.process.poll() is not None

    def log(self) -> str:
        return (
            f"--- last lines of {self.name}'s log ({self.log_path}) ---\n{log_tail(self.log_path)}"
        )

    def stop(self, grace_seconds: float = 15.0) -> None:
        """SIGTERM to the group, SIGKILL to what is left after the grace period."""
        group = self.process.pid  # the group id is the leader's pid
        self._signal_group(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + grace_seconds
        while self._group_alive(group) and time.monotonic() < deadline:
            time.sleep(0.1)
        self._signal_group(group, signal.SIGKILL)
        self.process.wait(timeout=grace_seconds)

    @staticmethod
    def _signal_group(group: int, signum: int) -> None:
        try:
            os.killpg(group, signum)
        except ProcessLookupError:
            pass

    @staticmethod
    def _group_alive(group: int) -> bool:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True


def run_to_completion(
    command: Sequence[str], *, env: Mapping[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run a command to its end; on timeout, kill its whole process group and fail."""
    process = subprocess.Popen(
        list(command),
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        ManagedProcess._signal_group(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(
            f"{command} did not finish within {timeout:.0f} s:\n{output}"
        ) from None
    return subprocess.CompletedProcess(list(command), process.returncode, output, None)


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.25,
    still_running: ManagedProcess | None = None,
) -> T:
    """Poll `check` until it returns something other than None; fail naming `what` otherwise.

    With `still_running`, give up at once (showing its log) if that process has exited.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if still_running is not None and still_running.exited():
            raise AssertionError(
                f"{still_running.name} exited while waiting for {what}\n{still_running.log()}"
            )
        if time.monotonic() > deadline:
            details = f"\n{still_running.log()}" if still_running is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{details}")
        time.sleep(interval)


def start_scoring_api(
    env: Mapping[str, str], *, log_path: Path, cwd: Path | None = None
) -> tuple[ManagedProcess, str]:
    """The real scoring service under uvicorn (one worker) on a free port, ready to score.

    `env` replaces every LEADSCORE_* variable of the test run's environment. Returns the process
    (the caller stops it) and its base URL.
    """
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("LEADSCORE_")}
    command = [sys.executable, "-m", "uvicorn", "leadscore_api.main:app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    process = ManagedProcess(
        f"scoring API :{port}", command, env={**inherited, **env}, log_path=log_path, cwd=cwd
    )
    base_url = f"http://127.0.0.1:{port}"

    def ready() -> bool | None:
        try:
            return True if httpx.get(f"{base_url}/ready", timeout=5).status_code == 200 else None
        except httpx.HTTPError:
            return None

    try:
        wait_until(
            ready, timeout=60, what="the scoring API to load the model", still_running=process
        )
    except BaseException:
        process.stop()
        raise
    return process, base_url
