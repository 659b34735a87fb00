"""Package data shipped with glacier_pipelines (read through importlib.resources)."""
