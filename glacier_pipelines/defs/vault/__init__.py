"""Vault copies: legacy S3 Glacier vaults (vault API) copied into the archive bucket, verified by tree hash."""
