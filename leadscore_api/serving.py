"""What the service serves from published files, and the poller that swaps in new versions.

The pipeline publishes files (the model, the lead scores snapshot) by renaming a finished file over
the old one. Each is served as one immutable object replaced by reference: a request reads
`current` once and works with that object, so a swap never mixes two versions within a request,
and no request waits for a load. A rejected file is logged and counted and the previous version
keeps serving. `PublishedFile` holds that logic once; `ModelHolder` and the lead scores holder
say how to read and validate their file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from leadscore_api.metrics import ApiMetrics
from leadscore_core.artifact import LoadedModel, ModelFileError, load_model_bytes

log = logging.getLogger(__name__)

# What identifies one version of the file on disk: a publish by rename changes the inode, an
# in-place rewrite changes size or mtime.
FileSignature = tuple[int, int, int]
Served = TypeVar("Served")


@dataclass(frozen=True)
class ServedModel:
    model: LoadedModel
    loaded_at: datetime


def _signature(stat: os.stat_result) -> FileSignature:
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def stat_signature(path: Path) -> FileSignature:
    return _signature(path.stat())


def _read_with_signature(path: Path) -> tuple[bytes, FileSignature]:
    """The bytes and the signature of the very file read, so that a publish racing this read is
    picked up by the next poll instead of being mistaken for the version just read."""
    with path.open("rb") as handle:
        signature = _signature(os.fstat(handle.fileno()))
        return handle.read(), signature


class PublishedFile(ABC, Generic[Served]):
    """Holds what is served from one published file and the state of that file as last seen.

    Subclasses say what the file is (`what`), how to open it (`_open`: the opened content and
    the signature of the very file opened), how to validate it into the served object
    (`_validate`, raising `rejected_errors` with the reason), whether two versions are the same
    (`_same`), and what to record when a version is swapped in or rejected.
    """

    what = "file"
    rejected_errors: tuple[type[Exception], ...] = ()

    def __init__(self, path: Path) -> None:
        self.path = path
        self.current: Served | None = None
        self.last_error: str | None = None
        self._seen: FileSignature | None = None
        self._waiting_logged = False

    @property
    def not_ready_reason(self) -> str:
        if self.last_error is not None:
            return (
                f"no valid {self.what} loaded: the {self.what} file was rejected: {self.last_error}"
            )
        return f"no {self.what} published yet: waiting for the pipeline to publish one"

    def changed(self) -> bool:
        try:
            return stat_signature(self.path) != self._seen
        except FileNotFoundError:
            return self._seen is not None
        except OSError:
            return True  # let refresh() report it

    def refresh(self) -> None:
        """Load the file if it changed since the last look; never raises."""
        if not self.changed():
            if self.current is None and self._seen is None and not self._waiting_logged:
                # Once, with the path: a wrong LEADSCORE_DATA_DIR shows here, not in the answers.
                self._waiting_logged = True
                log.info(
                    "no %s at %s yet: waiting for the pipeline to publish one", self.what, self.path
                )
            return
        try:
            opened, self._seen = self._open()
        except FileNotFoundError:
            self._seen = None
            if self.current is not None:
                log.warning(
                    "%s file %s disappeared; still serving the loaded one", self.what, self.path
                )
            return
        except OSError as exc:
            self._reject(f"cannot read the {self.what} file: {exc.strerror or exc}")
            return
        try:
            served = self._validate(opened)
        except self.rejected_errors as exc:
            self._reject(str(exc))
            return
        except Exception as exc:  # malformed content can fail deeper; the old version serves on
            self._reject(f"malformed {self.what} file ({type(exc).__name__}: {exc})")
            return
        self.last_error = None
        if self.current is not None and self._same(self.current, served):
            return  # the same content published again (or touched): nothing to swap
        self.current = served
        self._swapped(served)

    def _reject(self, reason: str) -> None:
        self.last_error = reason
        self._rejected()
        log.error("rejected %s file %s: %s", self.what, self.path, reason)

    async def poll(self, interval_seconds: float) -> None:
        """Re-check the file forever; loading runs in a thread so requests keep flowing."""
        while True:
            await asyncio.sleep(interval_seconds)
            if self.changed():
                await asyncio.to_thread(self.refresh)

    @contextlib.asynccontextmanager
    async def kept_current(self, interval_seconds: float) -> AsyncIterator[None]:
        """For an app's lifespan: load now (a missing or bad file leaves nothing served), then
        poll in the background until the app stops."""
        await asyncio.to_thread(self.refresh)
        poller = asyncio.create_task(self.poll(interval_seconds))
        try:
            yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    @abstractmethod
    def _open(self) -> tuple[Any, FileSignature]: ...

    @abstractmethod
    def _validate(self, opened: Any) -> Served: ...

    @abstractmethod
    def _same(self, current: Served, new: Served) -> bool: ...

    @abstractmethod
    def _swapped(self, served: Served) -> None: ...

    @abstractmethod
    def _rejected(self) -> None: ...


class ModelHolder(PublishedFile[ServedModel]):
    """Holds the served model and the state of the model file as last seen."""

    what = "model"
    rejected_errors = (ModelFileError,)

    def __init__(self, path: Path, metrics: ApiMetrics) -> None:
        super().__init__(path)
        self.metrics = metrics

    def _open(self) -> tuple[bytes, FileSignature]:
        return _read_with_signature(self.path)

    def _validate(self, opened: bytes) -> ServedModel:
        # A compiled predictor published beside the file for its sha256 is used if it agrees.
        model = load_model_bytes(opened, nthread=1, compiled_dir=self.path.parent)
        return ServedModel(model, datetime.now(UTC))

    def _same(self, current: ServedModel, new: ServedModel) -> bool:
        return current.model.file_sha256 == new.model.file_sha256

    def _swapped(self, served: ServedModel) -> None:
        model = served.model
        self.metrics.model_swapped(model.version, model.file_sha256, served.loaded_at.timestamp())
        log.info(
            "serving model %s (sha256 %s, %s predictor)",
            model.version,
            model.file_sha256[:12],
            model.predictor.kind,
        )

    def _rejected(self) -> None:
        self.metrics.model_reload_failures.inc()
