"""Error responses that name what is wrong, and never echo (possibly huge) request bodies back."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException

from leadscore_core.artifact import NonFiniteScoreError

# Starlette's own answer to a body with a Content-Length over the limit.
CONTENT_TOO_LARGE = "Content Too Large"
# A batch of 10,000 broken leads would otherwise answer with tens of thousands of errors.
MAX_REPORTED_ERRORS = 100


def _dotted_field(loc: tuple[str | int, ...]) -> str:
    """`("body", "leads", 17, "sessions")` -> `leads.17.sessions`; the bare body is `body`."""
    inner = loc[1:] if len(loc) > 1 and loc[0] in ("body", "query", "path", "header") else loc
    return ".".join(str(part) for part in inner)


async def validation_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    detail = []
    for error in errors[:MAX_REPORTED_ERRORS]:
        loc = tuple(error["loc"])
        msg = error["msg"]
        if error["type"] == "json_invalid" and len(loc) > 1:
            # FastAPI's own JSON parser puts a character offset where a field name would be.
            msg = f"{msg}: {error.get('ctx', {}).get('error', '')} at position {loc[1]}"
            loc = ("body",)
        detail.append(
            {"field": _dotted_field(loc), "loc": list(loc), "msg": msg, "type": error["type"]}
        )
    return JSONResponse({"detail": detail, "error_count": len(errors)}, status_code=422)


async def non_finite_score(request: Request, exc: Exception) -> JSONResponse:
    """A model that produces NaN is broken; answering 500 is better than a 200 with a wrong (and
    JSON-invalid) score. The request's scores are neither served nor recorded in the metrics."""
    return JSONResponse({"detail": str(exc)}, status_code=500)


async def http_problem(request: Request, exc: Exception) -> Response:
    """FastAPI's handler, except for 413: the body limit answers an oversized body with a
    declared Content-Length itself, in plain text, before any handler runs; a chunked body only
    turns out too large while it is read, inside the route. Both must answer the same."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 413:
        return PlainTextResponse(CONTENT_TOO_LARGE, status_code=413)
    return await http_exception_handler(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, http_problem)
    app.add_exception_handler(RequestValidationError, validation_problem)
    app.add_exception_handler(NonFiniteScoreError, non_finite_score)
