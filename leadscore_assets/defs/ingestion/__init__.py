"""Landing files -> the warehouse's schema `raw`: the landing schema, folder, loader and assets."""
