"""The dbt project as Dagster assets, and the mart exported for training."""
