"""Software-defined assets, grouped by domain: ingestion -> warehouse (dbt) -> ml."""
