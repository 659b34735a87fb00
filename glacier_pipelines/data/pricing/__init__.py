"""Versioned price lists, one TOML file per AWS region (see glacier_pipelines.core.pricing)."""
