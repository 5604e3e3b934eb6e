"""The scoring service with one added no-op route: the ceiling of the stack, for bench_api.py.

    python benchmarks/noop_app.py --host 127.0.0.1 --port 8001 [--no-access-log]

(served exactly as `leadscore-api` serves the service: same settings and uvicorn configuration)

`create_noop_app()` is the complete service from `leadscore_api.main.create_app()` (same settings
from the environment, same middleware, error handlers, model poller and routes) plus
`POST /noop`, which does exactly what `POST /score` does *before* scoring and nothing after:

- has the same body size limit (16 KiB), reads the raw body, and parses and validates it with
  `parse_body(ScoreRequest, body)`, the same one-pass pydantic validation `/score` uses (so an
  invalid body gets the same 422);
- returns a constant JSON body of the same shape and about the same size as a `/score` answer.

It skips what is specific to scoring: taking the served model, the `explain` query flag, building
the feature row, predicting, calibrating, the score histogram and encoding the result. The
difference between `/noop` and `/score` under the same load is therefore the cost of scoring.
"""

from __future__ import annotations

import argparse

from fastapi import FastAPI, Request
from fastapi.responses import Response

from leadscore_api.main import create_app
from leadscore_api.parsing import parse_body
from leadscore_api.routes import SCORE_BODY_LIMIT
from leadscore_api.schemas import ScoreRequest
from leadscore_api.server import serve
from leadscore_api.settings import ApiSettings

NOOP_PATH = "/noop"
CONSTANT_BODY = b'{"score":0.0,"label":"low","model_version":"noop/0"}'


def create_noop_app() -> FastAPI:
    app = create_app()

    @app.post(NOOP_PATH, include_in_schema=False, max_body_size=SCORE_BODY_LIMIT)
    async def noop(request: Request) -> Response:
        parse_body(ScoreRequest, await request.body())
        return Response(CONSTANT_BODY, media_type="application/json")

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The service plus POST /noop, for benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--no-access-log", action="store_true")
    args = parser.parse_args()
    serve(
        create_noop_app(),
        ApiSettings(),
        args.host,
        args.port,
        access_log=not args.no_access_log,
    )
