"""Landing files -> DuckDB schema `raw`: the landing schema, folder, loader and assets."""
