"""Shared, dependency-light core: the feature specification and the published model format.

The scoring API imports only this package (numpy, xgboost, pydantic-settings), never the pipeline.
"""
