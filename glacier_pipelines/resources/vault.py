"""The Glacier vault (source of a vault copy) and how the copy is paced.

Configured from environment variables by ``resources_from_env`` (the GLACIER_VAULT_* rows of
``settings.ENV_VARS``); the field defaults here are those variables' defaults.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from glacier_pipelines.core import vault_names
from glacier_pipelines.flows.vault import MiB, VaultSetup
from glacier_pipelines.resources.archive import ArchiveStoreResource, CatalogResource
from glacier_pipelines.resources.aws import AwsClientResource, is_loopback, resolved, shared_session


def s3_client(store: ArchiveStoreResource, concurrency: int) -> Any:
    """The destination S3 client: ``store``'s dagster-aws S3 resource (endpoint, region, profile, retries, timeouts),
    its pool also as large as the archives copied at once, from the process-wide session (see ``shared_session``)."""
    return store.get_client(
        session=shared_session(resolved(store.profile_name) or None),
        sign_payload=None,
        max_pool_connections=max(10, store.upload_concurrency * 2, concurrency * 2),
    )


class VaultResource(AwsClientResource):
    """The source Glacier vaults (vault API) and the pacing of a vault copy into the archive bucket.

    The AWS fields are dagster-aws' boto3 configuration (``endpoint_url``, ``region_name``,
    ``profile_name``, ``max_attempts``) for the Glacier client: dagster-aws has no Glacier resource.
    """

    region_name: str | None = "us-east-1"
    read_timeout: float = 300  # one range of up to chunk_size MiB per GetJobOutput
    account_id: str = "-"
    tier: str = "Bulk"
    chunk_size_mb: int = 64
    min_part_size_mb: float = 5  # S3's smallest part but the last; lower only for test servers configured so
    daily_bytes: int = 1024**4
    max_jobs_per_run: int = 1000
    expiry_margin_hours: float = 19
    inventory_format: str = "CSV"
    names_csv_path: str = ""
    key_prefix: str = "vaults"
    home: str = ".glacier"
    concurrency: int = 2
    max_archives_per_run: int = 10_000
    max_jobs_per_tick: int = 100  # DescribeJob calls per sensor tick
    max_attempts: int = 8

    def glacier(self) -> Any:
        """A boto3 Glacier client with botocore's standard retries (throttling and 5xx are retried)."""
        # A loopback endpoint (the test double, a local proxy) never goes through HTTP(S)_PROXY.
        proxies: dict[str, Any] = {"proxies": {}} if is_loopback(resolved(self.endpoint_url)) else {}
        return self.build_client(
            "glacier",
            session=shared_session(resolved(self.profile_name) or None),
            max_pool_connections=max(10, self.concurrency * 2),
            **proxies,
        )

    def overrides(self) -> dict[str, str] | None:
        if not self.names_csv_path:
            return None
        path = Path(self.names_csv_path).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise dg.Failure(f"cannot read the archive names CSV {path}: {exc}") from exc
        try:
            return vault_names.load_overrides_csv(text)
        except ValueError as exc:
            raise dg.Failure(f"archive names CSV {path}: {exc}") from exc

    def setup(self, catalog: CatalogResource, archive_store: ArchiveStoreResource) -> VaultSetup:
        upload = archive_store.upload_settings()
        try:
            return VaultSetup(
                catalog=catalog.get(),
                glacier=self.glacier(),
                s3=s3_client(archive_store, self.concurrency),
                upload=upload,
                bucket=upload.bucket,
                prefix=self.key_prefix,
                tier=self.tier,
                chunk_size=int(self.chunk_size_mb * MiB),
                daily_bytes=self.daily_bytes,
                max_jobs=self.max_jobs_per_run,
                expiry_margin=timedelta(hours=self.expiry_margin_hours),
                account_id=self.account_id,
                inventory_format=self.inventory_format,
                overrides=self.overrides(),
                overrides_source=self.names_csv_path or None,
                home=Path(self.home).expanduser(),
                concurrency=self.concurrency,
                max_archives_per_run=self.max_archives_per_run,
                min_part_size=int(self.min_part_size_mb * MiB),
            )
        except ValueError as exc:
            raise dg.Failure(f"vault copy configuration: {exc}") from exc
