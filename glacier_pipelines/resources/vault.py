"""The Glacier vault (source of a vault copy) and how the copy is paced.

Configured from environment variables by ``resources_from_env`` (the GLACIER_VAULT_* rows of
``settings.ENV_VARS``); the field defaults here are those variables' defaults.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import dagster as dg
from botocore.config import Config

from glacier_pipelines.core import vault_names
from glacier_pipelines.flows.vault import MiB, VaultSetup
from glacier_pipelines.resources.archive import ArchiveStoreResource, CatalogResource

_session: boto3.session.Session | None = None
_session_lock = threading.Lock()


def _client(service: str, **kwargs: Any) -> Any:
    """A client from one process-wide botocore session, so service models are parsed once.

    A new session costs 0.1-0.4 s per client, and the sensor and each of the three assets
    build two. Sessions are not thread-safe (clients are): creation is serialized. Every call
    returns a new client, so event handlers registered on one never reach another.
    """
    global _session
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client(service, **kwargs)


def s3_client(store: ArchiveStoreResource, concurrency: int) -> Any:
    """The destination S3 client: the same endpoint, region, retries and timeouts as ``ArchiveStoreResource.client()``."""
    config = Config(
        retries={"mode": "standard", "max_attempts": store.max_attempts},
        max_pool_connections=max(10, store.upload_concurrency * 2, concurrency * 2),
        connect_timeout=10,
        read_timeout=120,
    )
    return _client("s3", endpoint_url=store.endpoint_url or None, region_name=store.region_name, config=config)


def _is_loopback(url: str | None) -> bool:
    host = urlsplit(url).hostname if url else None
    return host in ("127.0.0.1", "localhost", "::1")


class VaultResource(dg.ConfigurableResource):
    """The source Glacier vaults (vault API) and the pacing of a vault copy into the archive bucket."""

    endpoint_url: str | None = None
    region_name: str = "us-east-1"
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
        config = Config(
            retries={"mode": "standard", "max_attempts": self.max_attempts},
            connect_timeout=10,
            read_timeout=300,  # one range of up to chunk_size MiB per GetJobOutput
            max_pool_connections=max(10, self.concurrency * 2),
            # A loopback endpoint (the test double, a local proxy) never goes through HTTP(S)_PROXY.
            **({"proxies": {}} if _is_loopback(self.endpoint_url) else {}),
        )
        return _client("glacier", endpoint_url=self.endpoint_url or None, region_name=self.region_name, config=config)

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
                catalog=catalog.get(), glacier=self.glacier(), s3=s3_client(archive_store, self.concurrency), upload=upload, bucket=upload.bucket,
                prefix=self.key_prefix, tier=self.tier, chunk_size=int(self.chunk_size_mb * MiB), daily_bytes=self.daily_bytes,
                max_jobs=self.max_jobs_per_run, expiry_margin=timedelta(hours=self.expiry_margin_hours), account_id=self.account_id,
                inventory_format=self.inventory_format, overrides=self.overrides(),
                overrides_source=self.names_csv_path or None, home=Path(self.home).expanduser(), concurrency=self.concurrency,
                max_archives_per_run=self.max_archives_per_run, min_part_size=int(self.min_part_size_mb * MiB),
            )
        except ValueError as exc:
            raise dg.Failure(f"vault copy configuration: {exc}") from exc
