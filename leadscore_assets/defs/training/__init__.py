"""Training, evaluating, reporting and registering a candidate model."""
