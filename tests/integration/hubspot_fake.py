"""A local stand-in for HubSpot's CRM API, for machines that cannot reach (or must not write to) a
real portal. A real HTTP server on 127.0.0.1 that honours the documented contract of the calls
write-back makes:

- every call needs `Authorization: Bearer <token>`, else 401 `{"status": "error", "category":
  "INVALID_AUTHENTICATION", ...}`; every authenticated answer carries `X-HubSpot-RateLimit-Max`,
  `-Remaining` and `-Interval-Milliseconds`;
- `POST /crm/v3/objects/contacts/batch/update`, body `{"inputs": [{"id", "properties"}]}` with
  1 to 100 inputs and string property values: 400 `VALIDATION_ERROR` for a malformed body, too
  many inputs, duplicate ids, a property that does not exist (`PROPERTY_DOESNT_EXIST`) or a value
  the property does not accept; otherwise the known contacts are updated and the answer is 200
  with `results`, or 207 with `errors` (`OBJECT_NOT_FOUND`, the unknown ids in `context.ids`);
- `POST /crm/v3/properties/contacts/groups` and `POST /crm/v3/properties/contacts`: 201 with the
  definition, 409 `OBJECT_ALREADY_EXISTS` when the name is taken, 400 for an unknown group;
- scripted trouble for the next calls: 429 with HubSpot's rate-limit body (`errorType:
  RATE_LIMIT`, `policyName`) and optionally `Retry-After`, or a 5xx.
Every call is recorded (time, path, status, body) so tests can check what was sent, and when.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from .local_http import LocalHttpServer

BATCH_UPDATE_PATH = "/crm/v3/objects/contacts/batch/update"
PROPERTIES_PATH = "/crm/v3/properties/contacts"
GROUPS_PATH = "/crm/v3/properties/contacts/groups"
MAX_INPUTS = 100
RATE_LIMIT_MAX = 190
RATE_LIMIT_INTERVAL_MS = 10_000
# A few of the properties every HubSpot portal has for contacts.
STANDARD_PROPERTIES = {
    "email": {
        "name": "email",
        "type": "string",
        "fieldType": "text",
        "groupName": "contactinformation",
    },
    "firstname": {
        "name": "firstname",
        "type": "string",
        "fieldType": "text",
        "groupName": "contactinformation",
    },
    "lastname": {
        "name": "lastname",
        "type": "string",
        "fieldType": "text",
        "groupName": "contactinformation",
    },
}


@dataclass(frozen=True)
class RecordedCall:
    at: float  # time.monotonic() when the request arrived
    method: str
    path: str
    status: int
    body: Any


@dataclass(frozen=True)
class Trouble:
    status: int
    retry_after: int | None
    policy: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status: int, category: str, message: str, **extra: Any) -> tuple[int, dict, dict]:
    body = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }
    return status, body, {}


class FakeHubSpot:
    """One portal: its contacts (id -> properties), property definitions and property groups."""

    def __init__(self, token: str, contact_ids: list[str] | None = None) -> None:
        self.token = token
        self.contacts: dict[str, dict[str, str]] = {cid: {} for cid in contact_ids or []}
        self.properties: dict[str, dict[str, Any]] = dict(STANDARD_PROPERTIES)
        self.groups: set[str] = {"contactinformation"}
        self.calls: list[RecordedCall] = []
        self._trouble: deque[Trouble] = deque()
        self._lock = threading.Lock()
        self._http: LocalHttpServer | None = None

    # --- control -------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._http is not None, "start() the fake first"
        return self._http.base_url

    def start(self) -> FakeHubSpot:
        self._http = LocalHttpServer(self._handler_class())
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.stop()

    def trouble(
        self,
        status: int,
        times: int = 1,
        *,
        retry_after: int | None = None,
        policy: str = "TEN_SECONDLY_ROLLING",
    ) -> None:
        """Answer the next `times` authenticated calls with `status` (429 or 5xx)."""
        with self._lock:
            self._trouble.extend([Trouble(status, retry_after, policy)] * times)

    def batch_calls(self) -> list[RecordedCall]:
        return [call for call in self.calls if call.path == BATCH_UPDATE_PATH]

    # --- the API -------------------------------------------------------------------------
    def answer(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict, dict]:
        """(status, JSON body, extra headers) for one call, which is recorded."""
        arrived = time.monotonic()
        try:
            body: Any = json.loads(raw) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = raw.decode("utf-8", errors="replace")
        with self._lock:
            status, payload, extra = self._dispatch(method, path, headers, body)
            self.calls.append(RecordedCall(arrived, method, path, status, body))
        if status != 401:
            extra = {
                "X-HubSpot-RateLimit-Max": str(RATE_LIMIT_MAX),
                "X-HubSpot-RateLimit-Remaining": "0" if status == 429 else str(RATE_LIMIT_MAX - 1),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(RATE_LIMIT_INTERVAL_MS),
                **extra,
            }
        return status, payload, extra

    def _dispatch(
        self, method: str, path: str, headers: dict[str, str], body: Any
    ) -> tuple[int, dict, dict]:
        authorization = headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return _error(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            )
        if authorization.removeprefix("Bearer ") != self.token:
            return _error(
                401,
                "INVALID_AUTHENTICATION",
                "The OAuth token used to make this call expired or is not valid.",
            )
        if self._trouble:
            return self._troubled(self._trouble.popleft())
        routes = {
            ("POST", BATCH_UPDATE_PATH): self._batch_update,
            ("POST", GROUPS_PATH): self._create_group,
            ("POST", PROPERTIES_PATH): self._create_property,
        }
        handler = routes.get((method, path.split("?", 1)[0]))
        if handler is None:
            return _error(404, "OBJECT_NOT_FOUND", f"Unable to route {method} {path}")
        if not isinstance(body, dict):
            return _error(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
        return handler(body)

    def _troubled(self, trouble: Trouble) -> tuple[int, dict, dict]:
        headers = {} if trouble.retry_after is None else {"Retry-After": str(trouble.retry_after)}
        if trouble.status != 429:
            status, body, _ = _error(
                trouble.status, "INTERNAL_ERROR", "Internal error, please try again later"
            )
            return status, body, headers
        limit = "daily" if trouble.policy == "DAILY" else "ten_secondly_rolling"
        body = {
            "status": "error",
            "message": f"You have reached your {limit} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": trouble.policy,
        }
        return 429, body, headers

    def _batch_update(self, body: dict) -> tuple[int, dict, dict]:
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            return _error(400, "VALIDATION_ERROR", "Invalid input: `inputs` must be a list")
        if len(inputs) > MAX_INPUTS:
            return _error(
                400,
                "VALIDATION_ERROR",
                f"Batch input size {len(inputs)} exceeds the limit of {MAX_INPUTS}",
            )
        invalid: list[dict[str, Any]] = []
        ids: list[str] = []
        for item in inputs:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                return _error(400, "VALIDATION_ERROR", "Invalid input: every input needs an `id`")
            properties = item.get("properties")
            if not isinstance(properties, dict):
                return _error(400, "VALIDATION_ERROR", "Invalid input: `properties` is required")
            ids.append(item["id"])
            for name, value in properties.items():
                problem = self._invalid_value(name, value)
                if problem is not None:
                    invalid.append({"isValid": False, "name": name, **problem})
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            return _error(
                400, "VALIDATION_ERROR", f"Duplicate IDs found in batch input: {duplicates}"
            )
        if invalid:
            return _error(
                400, "VALIDATION_ERROR", f"Property values were not valid: {json.dumps(invalid)}"
            )
        started = _now()
        results, unknown = [], []
        for item in inputs:
            record = self.contacts.get(item["id"])
            if record is None:
                unknown.append(item["id"])
                continue
            record.update(item["properties"])
            results.append(
                {
                    "id": item["id"],
                    "properties": {
                        **record,
                        "hs_object_id": item["id"],
                        "lastmodifieddate": _now(),
                    },
                    "createdAt": "2026-01-01T00:00:00.000Z",
                    "updatedAt": _now(),
                    "archived": False,
                }
            )
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "requestedAt": started,
            "startedAt": started,
            "completedAt": _now(),
        }
        if not unknown:
            return 200, answer, {}
        answer["numErrors"] = 1
        answer["errors"] = [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": "Could not get some CONTACT objects, they may be deleted or not "
                "exist. Check that ids are valid.",
                "context": {"ids": unknown},
            }
        ]
        return 207, answer, {}

    def _invalid_value(self, name: str, value: Any) -> dict[str, str] | None:
        definition = self.properties.get(name)
        if definition is None:
            return {
                "message": f'Property "{name}" does not exist',
                "error": "PROPERTY_DOESNT_EXIST",
            }
        if not isinstance(value, str):
            return {"message": f"{value!r} is not a string", "error": "INVALID_TYPE"}
        if definition["type"] == "number" and value != "":
            try:
                float(value)
            except ValueError:
                return {"message": f"{value!r} is not a valid number", "error": "INVALID_FLOAT"}
        if definition["type"] == "enumeration" and value != "":
            allowed = [option["value"] for option in definition.get("options", [])]
            if value not in allowed:
                return {
                    "message": f"{value!r} was not one of the allowed options: {allowed}",
                    "error": "INVALID_OPTION",
                }
        if len(value) > 65_536:
            return {"message": "value is longer than 65536 characters", "error": "INVALID_STRING"}
        return None

    def _create_group(self, body: dict) -> tuple[int, dict, dict]:
        name = body.get("name")
        if not isinstance(name, str) or not isinstance(body.get("label"), str):
            return _error(400, "VALIDATION_ERROR", "A property group needs a name and a label")
        if name in self.groups:
            return _error(409, "OBJECT_ALREADY_EXISTS", f"Property group {name} already exists")
        self.groups.add(name)
        return (
            201,
            {
                "name": name,
                "label": body["label"],
                "displayOrder": body.get("displayOrder", -1),
                "archived": False,
            },
            {},
        )

    def _create_property(self, body: dict) -> tuple[int, dict, dict]:
        required = ("name", "label", "type", "fieldType", "groupName")
        missing = [key for key in required if not isinstance(body.get(key), str)]
        if missing:
            return _error(400, "VALIDATION_ERROR", f"Missing required fields: {missing}")
        if body["groupName"] not in self.groups:
            return _error(
                400, "VALIDATION_ERROR", f"Property group {body['groupName']} does not exist"
            )
        if body["type"] == "enumeration" and not body.get("options"):
            return _error(400, "VALIDATION_ERROR", "An enumeration property needs options")
        if body["name"] in self.properties:
            return _error(
                409, "OBJECT_ALREADY_EXISTS", f"Property named '{body['name']}' already exists."
            )
        definition = {**body, "createdAt": _now(), "hidden": False, "formField": False}
        self.properties[body["name"]] = definition
        return 201, definition, {}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {key.lower(): value for key, value in self.headers.items()}
                status, body, extra = fake.answer(self.command, self.path, headers, raw)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = _serve  # noqa: N815 (the http.server API's names)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # calls are recorded in `calls`

        return Handler
