"""The real-time scoring service (FastAPI); see docs/api.md."""
