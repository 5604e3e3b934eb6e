"""The promotion gate: whether a candidate may replace the champion."""
