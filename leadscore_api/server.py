"""Running the service under uvicorn with limits on idle and slow connections.

uvicorn closes a keep-alive connection `timeout_keep_alive` seconds after a response, but arms
nothing before a connection's first request, and nothing while a request is being received: a
client that connects and sends nothing, or sends its headers a byte at a time (slowloris), holds
its socket for ever. Measured with uvicorn 0.54: a fresh idle connection was still open after
12 s, a client sending one header byte every 0.5 s after 14 s (h11 and httptools alike; uvicorn
has no header-read timeout setting). `RequestReadTimeoutProtocol` adds the missing deadline: a
request (headers and body) must arrive within `request_read_timeout_seconds` of the connection
being opened or of the previous response, or the connection is closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from leadscore_api.settings import ApiSettings


class RequestReadTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus a deadline for receiving each request completely."""

    request_read_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_read_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_read_deadline()
        super().connection_lost(exc)

    def on_message_complete(self) -> None:
        self._disarm_read_deadline()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The next request's clock starts now, unless one already arrived (pipelined).
        if not self.pipeline and not self.transport.is_closing():
            self._arm_read_deadline()

    def _arm_read_deadline(self) -> None:
        self._disarm_read_deadline()
        self._read_deadline = self.loop.call_later(self.request_read_timeout, self._read_timed_out)

    def _disarm_read_deadline(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_timed_out(self) -> None:
        self._read_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def protocol_for(settings: ApiSettings) -> type[RequestReadTimeoutProtocol]:
    """The protocol class with this configuration's deadline (uvicorn instantiates it)."""
    return type(
        "RequestReadTimeoutProtocol",
        (RequestReadTimeoutProtocol,),
        {"request_read_timeout": settings.request_read_timeout_seconds},
    )


def serve(
    app: FastAPI,
    settings: ApiSettings,
    host: str,
    port: int,
    log_level: str = "info",
    access_log: bool = True,
) -> None:
    """uvicorn with the connection limits from `settings`; one worker (the model lives in it)."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
        workers=1,
        http=protocol_for(settings),
        timeout_keep_alive=settings.keep_alive_seconds,
        limit_concurrency=settings.limit_concurrency,
        backlog=settings.backlog,
    )
