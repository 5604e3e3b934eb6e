"""Integration tests against real processes (n8n, uvicorn).

A package, so that pytest puts `tests/` on sys.path and these tests import `model_factory`
like the rest of the suite does.
"""
