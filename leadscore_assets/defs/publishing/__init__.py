"""Publishing the gated candidate as the served model."""
