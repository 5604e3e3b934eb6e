"""A small HubSpot client for the two calls write-back needs, by HubSpot's documented contract.

- `POST /crm/v3/objects/contacts/batch/update` with `{"inputs": [{"id", "properties"}]}`, at most
  100 inputs per call. 200 when every input was updated, 207 (multi-status) when some failed:
  `results` lists the updated records, `errors` the failures (`category`, `message`, and the
  failed record ids in `context.ids`). A property that does not exist, or a value it does not
  accept, fails the whole call with 400 (`category: VALIDATION_ERROR`).
- `POST /crm/v3/properties/contacts` and `/crm/v3/properties/contacts/groups` to create the
  custom properties once: 201 created, 409 when one of that name exists.
- Every call carries the private app's token as `Authorization: Bearer <token>`: 401 when it is
  missing or wrong, 403 when the app lacks a scope. 429 when a rate limit is hit (body
  `errorType: RATE_LIMIT` with `policyName`, e.g. `TEN_SECONDLY_ROLLING` or `DAILY`; headers
  `X-HubSpot-RateLimit-*` and possibly `Retry-After`), 5xx when HubSpot fails.

429 and 5xx answers and transport errors are retried with backoff (a `Retry-After` answer is
honoured), up to a bounded number of attempts; a batch update is an overwrite, so sending it
again is safe. Anything else is final and raised with HubSpot's own message. The daily limit is
not retried: it resets at midnight, hours away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from leadscore_core.settings import DataDirSettings
from leadscore_core.tiers import SALES_TIERS

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.hubapi.com"
BATCH_UPDATE_PATH = "/crm/v3/objects/contacts/batch/update"
PROPERTIES_PATH = "/crm/v3/properties/contacts"
PROPERTY_GROUPS_PATH = "/crm/v3/properties/contacts/groups"
MAX_BATCH_INPUTS = 100
TOKEN_VARIABLE = "LEADSCORE_HUBSPOT_TOKEN"

PROPERTY_GROUP = {"name": "leadscore", "label": "Lead score", "displayOrder": -1}
# The contact properties write-back fills; created once per portal by `create_properties`.
LEADSCORE_PROPERTIES: tuple[dict[str, Any], ...] = (
    {
        "name": "leadscore_score",
        "label": "Lead score",
        "type": "number",
        "fieldType": "number",
        "description": "Probability (0 to 1) that the contact becomes a closed-won deal.",
    },
    {
        "name": "leadscore_tier",
        "label": "Lead score tier",
        "type": "enumeration",
        "fieldType": "select",
        "description": "A is the high-scoring tier sales follows up first.",
        "options": [
            {"label": tier.name, "value": tier.letter, "displayOrder": rank}
            for rank, tier in enumerate(SALES_TIERS)
        ],
    },
    {
        "name": "leadscore_reasons",
        "label": "Lead score reasons",
        "type": "string",
        "fieldType": "textarea",
        "description": "The three features that moved the score most, one per line.",
    },
    {
        "name": "leadscore_model_version",
        "label": "Lead score model version",
        "type": "string",
        "fieldType": "text",
        "description": "The model that computed the score.",
    },
)


class HubSpotSettings(DataDirSettings):
    """Where write-back goes and how hard it tries; read from LEADSCORE_HUBSPOT_* variables."""

    model_config = SettingsConfigDict(env_prefix="LEADSCORE_", extra="ignore")

    # A private app's access token; never stored in the repository.
    hubspot_token: SecretStr | None = None
    hubspot_base_url: str = DEFAULT_BASE_URL
    hubspot_batch_size: int = Field(MAX_BATCH_INPUTS, ge=1, le=MAX_BATCH_INPUTS)
    hubspot_max_attempts: int = Field(5, ge=1, le=20)
    # The first wait when HubSpot gives no Retry-After; doubled per attempt, capped.
    hubspot_backoff_seconds: float = Field(1.0, ge=0)
    hubspot_max_backoff_seconds: float = Field(60.0, ge=0)
    hubspot_timeout_seconds: float = Field(30.0, gt=0)
    # What was last pushed per contact; defaults to `$LEADSCORE_DATA_DIR/crm/hubspot_ledger.sqlite`.
    hubspot_ledger_path: Path | None = None

    @field_validator("hubspot_token")
    @classmethod
    def _blank_token_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return value

    @field_validator("hubspot_base_url")
    @classmethod
    def _http_base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError(f"must look like https://api.hubapi.com, got {value!r}")
        return value.rstrip("/")

    @property
    def ledger_path(self) -> Path:
        return self.hubspot_ledger_path or self.data_dir / "crm" / "hubspot_ledger.sqlite"


class HubSpotError(RuntimeError):
    """HubSpot refused a call for a reason sending it again cannot fix; the message says why."""


class HubSpotUnavailable(HubSpotError):
    """HubSpot kept answering 429 or 5xx (or could not be reached) for every attempt."""


@dataclass(frozen=True)
class BatchOutcome:
    """One batch update: the contact ids HubSpot updated, and why the others failed."""

    updated: list[str]
    failed: dict[str, str]


@dataclass
class CallStats:
    """What the client had to do to get its answers, for the run's report."""

    calls: int = 0
    retries: dict[str, int] = field(default_factory=dict)  # cause -> count

    def count_retry(self, cause: str) -> None:
        self.retries[cause] = self.retries.get(cause, 0) + 1


def _problem(response: httpx.Response) -> str:
    """HubSpot's own words for a failed call: `<status> <category>: <message>`."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    category = body.get("category") or body.get("errorType") or response.reason_phrase
    message = body.get("message") or response.text[:300]
    return f"HTTP {response.status_code} {category}: {message}"


def _retry_after_seconds(response: httpx.Response) -> float | None:
    """`Retry-After` as seconds (a number, or an HTTP date); None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _is_daily_limit(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("policyName") == "DAILY"


class HubSpotClient:
    """Batch contact updates and property creation, with bounded retries (module docstring)."""

    def __init__(
        self,
        *,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        max_attempts: int = 5,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 60.0,
        timeout_seconds: float = 30.0,
    ) -> None:
        self.base_url = base_url
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.stats = CallStats()
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout_seconds,
        )

    @classmethod
    def from_settings(cls, settings: HubSpotSettings) -> HubSpotClient:
        if settings.hubspot_token is None:
            raise HubSpotError(
                f"set {TOKEN_VARIABLE} to a HubSpot private app token (docs/crm_sync.md)"
            )
        return cls(
            token=settings.hubspot_token.get_secret_value(),
            base_url=settings.hubspot_base_url,
            max_attempts=settings.hubspot_max_attempts,
            backoff_seconds=settings.hubspot_backoff_seconds,
            max_backoff_seconds=settings.hubspot_max_backoff_seconds,
            timeout_seconds=settings.hubspot_timeout_seconds,
        )

    def __enter__(self) -> HubSpotClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- calls -----------------------------------------------------------------------------
    def update_contacts(self, updates: Mapping[str, Mapping[str, str]]) -> BatchOutcome:
        """Set `properties` on each contact id (at most 100); raises HubSpotError when the whole
        call is refused, HubSpotUnavailable when retries are exhausted."""
        if not 0 < len(updates) <= MAX_BATCH_INPUTS:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH_INPUTS} contacts, not {len(updates)}")
        inputs = [{"id": contact_id, "properties": dict(p)} for contact_id, p in updates.items()]
        response = self._call("POST", BATCH_UPDATE_PATH, {"inputs": inputs})
        if response.status_code not in (200, 207):
            hint = ""
            if "PROPERTY_DOESNT_EXIST" in response.text:
                hint = " (create the properties once: `leadscore crm create-properties`)"
            raise HubSpotError(f"HubSpot refused the batch update: {_problem(response)}{hint}")
        body = response.json()
        updated = [str(record["id"]) for record in body.get("results", [])]
        failed: dict[str, str] = {}
        for error in body.get("errors", []):
            reason = f"{error.get('category', 'ERROR')}: {error.get('message', 'no message')}"
            for contact_id in (error.get("context") or {}).get("ids", []):
                failed[str(contact_id)] = reason
        for contact_id in updates:
            if contact_id not in failed and contact_id not in updated:
                failed[contact_id] = "missing from HubSpot's answer"
        return BatchOutcome([c for c in updated if c in updates], failed)

    def create_properties(self) -> dict[str, str]:
        """Create the `leadscore` property group and LEADSCORE_PROPERTIES in the portal.

        Idempotent: returns {name: "created" | "exists"}; an existing property is left as it is.
        """
        outcome = {"group leadscore": self._create(PROPERTY_GROUPS_PATH, PROPERTY_GROUP)}
        for definition in LEADSCORE_PROPERTIES:
            body = {**definition, "groupName": PROPERTY_GROUP["name"]}
            outcome[definition["name"]] = self._create(PROPERTIES_PATH, body)
        return outcome

    def _create(self, path: str, body: Mapping[str, Any]) -> str:
        response = self._call("POST", path, body)
        if response.status_code in (200, 201):
            return "created"
        if response.status_code == 409:
            return "exists"
        raise HubSpotError(f"HubSpot refused to create {body['name']!r}: {_problem(response)}")

    # --- transport -------------------------------------------------------------------------
    def _backoff(self, attempt: int) -> float:
        return min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))

    def _call(self, method: str, path: str, body: Mapping[str, Any]) -> httpx.Response:
        """The first answer that is not 429/5xx; 401 and 403 are raised here for every call."""
        for attempt in range(1, self.max_attempts + 1):
            self.stats.calls += 1
            try:
                response = self._http.request(method, path, json=body)
            except httpx.TransportError as exc:
                cause, problem = "transport", f"{type(exc).__name__}: {exc}"
                wait = self._backoff(attempt)
            else:
                status = response.status_code
                if status == 401:
                    raise HubSpotError(
                        f"HubSpot refused the token ({_problem(response)}); check {TOKEN_VARIABLE}"
                    )
                if status == 403:
                    raise HubSpotError(
                        f"the token lacks a scope ({_problem(response)}); write-back needs "
                        "crm.objects.contacts.write, creating properties "
                        "crm.schemas.contacts.write"
                    )
                if status != 429 and status < 500:
                    return response
                if status == 429 and _is_daily_limit(response):
                    raise HubSpotUnavailable(
                        f"HubSpot's daily limit is used up: {_problem(response)}"
                    )
                cause, problem = (
                    ("rate limit" if status == 429 else "server error"),
                    _problem(response),
                )
                retry_after = _retry_after_seconds(response)
                wait = (
                    min(self.max_backoff_seconds, retry_after)
                    if retry_after is not None
                    else self._backoff(attempt)
                )
            if attempt == self.max_attempts:
                raise HubSpotUnavailable(
                    f"{method} {path} failed {self.max_attempts} times; last: {problem}"
                )
            self.stats.count_retry(cause)
            log.warning(
                "%s %s: %s; retrying in %.1f s (attempt %d of %d)",
                method,
                path,
                problem,
                wait,
                attempt + 1,
                self.max_attempts,
            )
            time.sleep(wait)
        raise AssertionError("unreachable: the loop returns or raises")
