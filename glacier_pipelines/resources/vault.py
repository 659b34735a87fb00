"""The Glacier vault (source of a vault copy) and how the copy is paced, configured from environment variables."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.session
import dagster as dg
from botocore.config import Config

from glacier_pipelines.core import vault_names
from glacier_pipelines.flows.vault import MiB, VaultSetup
from glacier_pipelines.resources.archive import ArchiveStoreResource, CatalogResource

# name -> (default, description), in the shape of glacier_pipelines.settings.ENV_VARS (merge it there).
VAULT_ENV_VARS: dict[str, tuple[str, str]] = {
    "GLACIER_VAULT_ENDPOINT_URL": ("", "Glacier (vault API) endpoint; unset means AWS itself (credentials from the standard AWS chain)."),
    "GLACIER_VAULT_REGION": ("us-east-1", "Region of the source vaults."),
    "GLACIER_VAULT_ACCOUNT_ID": ("-", "Account id of the vaults; '-' means the credentials' own account."),
    "GLACIER_VAULT_TIER": ("Bulk", "Retrieval tier of archive-retrieval jobs: Bulk, Standard or Expedited."),
    "GLACIER_VAULT_CHUNK_SIZE_MB": ("64", "Range fetched and uploaded as one part (MiB, rounded down to a power of two, at least 8)."),
    "GLACIER_VAULT_DAILY_BYTES": ("1099511627776", "Bytes of retrieval jobs started per 24 h (0: no limit)."),
    "GLACIER_VAULT_MAX_JOBS_PER_RUN": ("1000", "Retrieval jobs started per run."),
    "GLACIER_VAULT_EXPIRY_MARGIN_HOURS": ("19", "A job output completed longer ago than this, and not copied yet, is requested again (Glacier keeps it 24 h)."),
    "GLACIER_VAULT_INVENTORY_FORMAT": ("CSV", "Format of inventory-retrieval jobs: CSV or JSON."),
    "GLACIER_VAULT_NAMES_CSV": ("", "CSV of 'archive id,name' overriding the names derived from archive descriptions."),
    "GLACIER_VAULT_KEY_PREFIX": ("vaults", "Key prefix of vault copies: <prefix>/<vault>/<name>."),
    "GLACIER_VAULT_CONCURRENCY": ("2", "Archives copied at once (memory: about chunk size x this)."),
}


def vault_env(name: str, environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    value = environ.get(name, "")
    return value if value != "" else VAULT_ENV_VARS[name][0]


_botocore_session: botocore.session.Session | None = None
_session_lock = threading.Lock()


def _client(service: str, **kwargs: Any) -> Any:
    """A client from one process-wide botocore session, so service models are parsed once.

    A new session costs 0.1-0.4 s per client, and the sensor and each of the three assets
    build two. Sessions are not thread-safe (clients are): creation is serialized. Every call
    returns a new client, so event handlers registered on one never reach another.
    """
    global _botocore_session
    with _session_lock:
        if _botocore_session is None:
            _botocore_session = botocore.session.get_session()
        return boto3.session.Session(botocore_session=_botocore_session).client(service, **kwargs)


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


def vault_resource_from_env(environ: Mapping[str, str] | None = None, home: str | None = None) -> VaultResource:
    """The VaultResource for ``defs`` from GLACIER_VAULT_* variables (``home`` defaults to GLACIER_HOME's default)."""
    e = lambda name: vault_env(name, environ)  # noqa: E731
    if home is None:
        from glacier_pipelines.settings import Settings

        home = str(Settings.from_env(environ).home)
    return VaultResource(
        endpoint_url=e("GLACIER_VAULT_ENDPOINT_URL") or None, region_name=e("GLACIER_VAULT_REGION"),
        account_id=e("GLACIER_VAULT_ACCOUNT_ID"), tier=e("GLACIER_VAULT_TIER"), chunk_size_mb=int(e("GLACIER_VAULT_CHUNK_SIZE_MB")),
        daily_bytes=int(e("GLACIER_VAULT_DAILY_BYTES")), max_jobs_per_run=int(e("GLACIER_VAULT_MAX_JOBS_PER_RUN")),
        expiry_margin_hours=float(e("GLACIER_VAULT_EXPIRY_MARGIN_HOURS")), inventory_format=e("GLACIER_VAULT_INVENTORY_FORMAT"),
        names_csv_path=e("GLACIER_VAULT_NAMES_CSV"), key_prefix=e("GLACIER_VAULT_KEY_PREFIX").strip("/"), home=home,
        concurrency=int(e("GLACIER_VAULT_CONCURRENCY")),
    )
