"""The model being served, and the poller that swaps in newly published files.

The served model is one immutable object replaced by reference: a request reads `current` once and
scores with that object, so a swap never mixes two models within a request, and no request waits
for a load. A rejected file is logged and counted and the previous model keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from leadscore_api.metrics import ApiMetrics
from leadscore_core.artifact import LoadedModel, ModelFileError, load_model_bytes

log = logging.getLogger(__name__)

# What identifies one version of the file on disk: a publish by rename changes the inode, an
# in-place rewrite changes size or mtime.
FileSignature = tuple[int, int, int]


@dataclass(frozen=True)
class ServedModel:
    model: LoadedModel
    loaded_at: datetime


def _signature(stat: os.stat_result) -> FileSignature:
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _read_with_signature(path: Path) -> tuple[bytes, FileSignature]:
    """The bytes and the signature of the very file read, so that a publish racing this read is
    picked up by the next poll instead of being mistaken for the version just read."""
    with path.open("rb") as handle:
        signature = _signature(os.fstat(handle.fileno()))
        return handle.read(), signature


class ModelHolder:
    """Holds the served model and the state of the model file as last seen."""

    def __init__(self, path: Path, metrics: ApiMetrics) -> None:
        self.path = path
        self.metrics = metrics
        self.current: ServedModel | None = None
        self.last_error: str | None = None
        self._seen: FileSignature | None = None

    @property
    def not_ready_reason(self) -> str:
        if self.last_error is not None:
            return f"no valid model loaded: the model file was rejected: {self.last_error}"
        return "no model published yet: waiting for the pipeline to publish one"

    def changed(self) -> bool:
        try:
            return _signature(self.path.stat()) != self._seen
        except FileNotFoundError:
            return self._seen is not None
        except OSError:
            return True  # let refresh() report it

    def refresh(self) -> None:
        """Load the file if it changed since the last look; never raises."""
        if not self.changed():
            return
        try:
            raw, self._seen = _read_with_signature(self.path)
        except FileNotFoundError:
            self._seen = None
            if self.current is not None:
                log.warning("model file %s disappeared; still serving the loaded model", self.path)
            return
        except OSError as exc:
            self._reject(f"cannot read the model file: {exc.strerror or exc}")
            return
        try:
            # A compiled predictor published beside the file for its sha256 is used if it agrees.
            model = load_model_bytes(raw, nthread=1, compiled_dir=self.path.parent)
        except ModelFileError as exc:
            self._reject(str(exc))
            return
        except Exception as exc:  # malformed metadata can fail deeper; the old model keeps serving
            self._reject(f"malformed model file ({type(exc).__name__}: {exc})")
            return
        self.last_error = None
        if self.current is not None and self.current.model.file_sha256 == model.file_sha256:
            return  # the same content published again (or touched): nothing to swap
        self.current = ServedModel(model, datetime.now(UTC))
        self.metrics.model_swapped(
            model.version, model.file_sha256, self.current.loaded_at.timestamp()
        )
        log.info(
            "serving model %s (sha256 %s, %s predictor)",
            model.version,
            model.file_sha256[:12],
            model.predictor.kind,
        )

    def _reject(self, reason: str) -> None:
        self.last_error = reason
        self.metrics.model_reload_failures.inc()
        log.error("rejected model file %s: %s", self.path, reason)

    async def poll(self, interval_seconds: float) -> None:
        """Re-check the file forever; loading runs in a thread so requests keep flowing."""
        while True:
            await asyncio.sleep(interval_seconds)
            if self.changed():
                await asyncio.to_thread(self.refresh)
