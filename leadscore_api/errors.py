"""Error responses that name what is wrong, and never echo (possibly huge) request bodies back."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

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


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_problem)
