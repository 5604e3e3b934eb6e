"""A local stand-in for Slack's Web API method `chat.postMessage`, for machines without Slack.

It honours the method's documented contract (https://api.slack.com/methods/chat.postMessage):
- `POST /api/chat.postMessage`, the token in an `Authorization: Bearer <token>` header, and a
  JSON body (`Content-Type: application/json`) naming a `channel` (ID or name) and the `text`;
- every answer is HTTP 200 with a JSON body: `{"ok": true, "channel": <channel ID>, "ts": <message
  timestamp>, "message": {...}}` on success, `{"ok": false, "error": <code>}` otherwise, with
  Slack's codes `not_authed`, `invalid_auth`, `invalid_form_data`, `invalid_json`,
  `channel_not_found`, `no_text` and (for other methods) `unknown_method`.
Accepted messages and rejected calls are recorded separately, so a test can insist on both.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from .local_http import LocalHttpServer

POST_MESSAGE_PATH = "/api/chat.postMessage"


@dataclass(frozen=True)
class PostedMessage:
    channel: str  # as the caller named it
    channel_id: str
    text: str
    ts: str
    body: dict[str, Any]


@dataclass
class SlackReceiver:
    """Accepts `chat.postMessage` calls bearing `token`, for `channels` (name -> channel ID)."""

    token: str
    channels: dict[str, str]
    posted: list[PostedMessage] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (error code, raw body)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _http: LocalHttpServer | None = None

    @property
    def post_message_url(self) -> str:
        assert self._http is not None, "start() the receiver first"
        return f"{self._http.base_url}{POST_MESSAGE_PATH}"

    def start(self) -> None:
        self._http = LocalHttpServer(self._handler_class())

    def stop(self) -> None:
        if self._http is not None:
            self._http.stop()

    def answer(self, path: str, headers: dict[str, str], raw: bytes) -> dict[str, Any]:
        """Slack's answer to one call, recording it as posted or rejected."""
        error, body = self._check(path, headers, raw)
        with self._lock:
            if error is not None:
                self.rejected.append((error, raw.decode("utf-8", errors="replace")))
                return {"ok": False, "error": error}
            channel = str(body["channel"])
            channel_id = self._channel_id(channel)
            ts = f"{time.time():.6f}"
            self.posted.append(PostedMessage(channel, channel_id, body["text"], ts, body))
        return {
            "ok": True,
            "channel": channel_id,
            "ts": ts,
            "message": {
                "type": "message",
                "subtype": "bot_message",
                "text": body["text"],
                "ts": ts,
            },
        }

    def _check(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[str | None, Any]:
        if path.split("?", 1)[0] != POST_MESSAGE_PATH:
            return "unknown_method", None
        authorization = headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return "not_authed", None
        if authorization.removeprefix("Bearer ") != self.token:
            return "invalid_auth", None
        if not headers.get("content-type", "").startswith("application/json"):
            return "invalid_form_data", None
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return "invalid_json", None
        if not isinstance(body, dict):
            return "invalid_json", None
        if self._channel_id(str(body.get("channel", ""))) == "":
            return "channel_not_found", None
        if not body.get("text") and not body.get("blocks") and not body.get("attachments"):
            return "no_text", None
        return None, body

    def _channel_id(self, channel: str) -> str:
        """Slack takes a channel's ID, its name, or its name with '#'; '' when unknown."""
        if channel in self.channels.values():
            return channel
        return self.channels.get(channel.removeprefix("#"), "")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server API's name)
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {key.lower(): value for key, value in self.headers.items()}
                payload = json.dumps(receiver.answer(self.path, headers, raw)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # calls are recorded in `posted` / `rejected`

        return Handler
