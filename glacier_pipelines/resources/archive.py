"""Resources of the archive path, each configured from environment variables.

Values that may carry secrets (the catalog URL) are passed as ``dg.EnvVar`` so they never
appear in the UI's resource configuration; the rest are plain values with documented defaults.
"""


import ipaddress
import os
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
from botocore.config import Config

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.core import pricing, transfer
from glacier_pipelines.core.sources import SourcePolicy
from glacier_pipelines.core.staging import StagingArea
from glacier_pipelines.core.amqp import AmqpSettings, AmqpTransport
from glacier_pipelines.core.transport import EmbeddedTransport, Transport
from glacier_pipelines.flows.archive import ArchiveSetup
from glacier_pipelines.flows.packaging import PackagingPolicy
from glacier_pipelines.settings import MiB, Settings, env

_catalogs: dict[str, Catalog] = {}
_catalogs_lock = threading.Lock()


def pricing_or_none(region: str) -> pricing.Pricing | None:
    """The price list for cost estimates, or None (with a warning) where none is known: estimates are optional."""
    try:
        return pricing.load_pricing(region)
    except pricing.PricingError as exc:
        dg.get_dagster_logger().warning(f"no cost estimates: {exc}")
        return None


class CatalogResource(dg.ConfigurableResource):
    """The SQLAlchemy catalog (SQLite file by default, PostgreSQL by URL)."""

    url: str

    def get(self) -> Catalog:
        # Outside a run (CLI, sensor tests) an EnvVar field is not resolved yet.
        url = self.url.get_value() if isinstance(self.url, dg.EnvVar) else self.url
        if not url:
            raise dg.Failure("the catalog URL is empty: set GLACIER_CATALOG_URL or unset it for the SQLite default")
        with _catalogs_lock:  # one engine (connection pool) per URL and process
            if url not in _catalogs:
                if url.startswith("sqlite:///"):
                    Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
                _catalogs[url] = Catalog(url)
            return _catalogs[url]


class ArchiveStoreResource(dg.ConfigurableResource):
    """The destination bucket, its storage class and how uploads are made.

    A boto3 client is built here rather than through dagster-aws' S3Resource because the
    upload path needs botocore's ``standard`` retry mode, a connection pool as large as the
    part concurrency, and read timeouts, which that resource does not expose.
    """

    endpoint_url: str | None = None
    region_name: str = "us-east-1"
    bucket: str
    storage_class: str = "DEEP_ARCHIVE"
    key_prefix: str = "archive"
    sse: str | None = None
    kms_key_id: str | None = None
    part_size_mb: float = 16
    multipart_threshold_mb: float = 16
    upload_concurrency: int = 4
    max_attempts: int = 8
    stale_upload_hours: float = 24
    package_threshold_bytes: int = 1024 * 1024
    package_tenant_thresholds: str = ""
    package_target_bytes: int = 256 * 1024 * 1024
    package_max_age_hours: float = 24
    staging_url: str = ""  # GLACIER_STAGING_URL: s3://bucket/prefix for staged small files; empty: $GLACIER_HOME/staging

    def client(self) -> Any:
        config = Config(
            retries={"mode": "standard", "max_attempts": self.max_attempts},
            max_pool_connections=max(10, self.upload_concurrency * 2),
            connect_timeout=10,
            read_timeout=120,
            # Every part and object carries its own x-amz-checksum-sha256, which S3 verifies; signing the
            # payload too (botocore does on plain-HTTP endpoints) would hash every byte once more.
            s3={"payload_signing_enabled": False},
        )
        return boto3.session.Session().client("s3", endpoint_url=self.endpoint_url or None, region_name=self.region_name, config=config)

    def packaging_policy(self) -> PackagingPolicy:
        return PackagingPolicy.from_strings(str(self.package_threshold_bytes), str(self.package_target_bytes),
                                            str(self.package_max_age_hours), self.package_tenant_thresholds)

    def upload_settings(self) -> transfer.UploadSettings:
        return transfer.UploadSettings(
            bucket=self.bucket,
            storage_class=self.storage_class.upper(),
            part_size=int(self.part_size_mb * MiB),
            multipart_threshold=int(self.multipart_threshold_mb * MiB),
            max_concurrency=self.upload_concurrency,
            sse=self.sse or None,
            kms_key_id=self.kms_key_id or None,
        )


class SourcesResource(dg.ConfigurableResource):
    """Where files may be fetched from: allowed file:// roots and private networks, timeouts."""

    roots: str = ""
    allowed_networks: str = ""
    read_timeout: float = 60.0

    def policy(self, s3_client: Any = None) -> SourcePolicy:
        return SourcePolicy.from_strings(self.roots, self.allowed_networks, read_timeout=self.read_timeout, s3_client=s3_client)


class RequestTransportResource(dg.ConfigurableResource):
    """Where requests arrive and responses go: 'embedded' spool folders under ``home``, or 'amqp'."""

    kind: str = "embedded"
    home: str = ".glacier"
    batch_size: int = 500
    tenant_runs: str = "1"  # GLACIER_TENANT_RUNS: archive runs of one tenant at once ("2", or "1,lab=4")
    tenants: str = ""  # comma-separated allow-list; empty allows every valid tenant
    amqp_url: str = ""
    request_queue: str = "glacier.storage.requests"
    response_exchange: str = ""
    response_routing_key: str = "glacier.storage.responses"
    dead_letter_queue: str = "glacier.storage.requests.dlq"
    restore_request_queue: str = ""

    def transport(self) -> Transport:
        """A new transport; close it when done (it is a context manager)."""
        if self.kind == "embedded":
            return EmbeddedTransport(Path(self.home) / "spool")
        if self.kind == "amqp":
            url = self.amqp_url.get_value() if isinstance(self.amqp_url, dg.EnvVar) else self.amqp_url
            if not url:
                raise dg.Failure("GLACIER_REQUEST_TRANSPORT=amqp needs GLACIER_AMQP_URL")
            return AmqpTransport(AmqpSettings(
                url=url, request_queue=self.request_queue, response_exchange=self.response_exchange,
                response_routing_key=self.response_routing_key, dead_letter_queue=self.dead_letter_queue,
            ))
        raise dg.Failure(f"GLACIER_REQUEST_TRANSPORT={self.kind!r} is not one of 'embedded', 'amqp'")

    def allowed_tenants(self) -> tuple[str, ...]:
        return tuple(x.strip() for x in self.tenants.split(",") if x.strip())

    def staging_dir(self) -> Path:
        return Path(self.home) / "staging"


def archive_setup(catalog: CatalogResource, store: ArchiveStoreResource, sources: SourcesResource,
                  transport: RequestTransportResource) -> ArchiveSetup:
    s3 = store.client()
    return ArchiveSetup(
        catalog=catalog.get(), s3=s3, upload=store.upload_settings(), sources=sources.policy(s3_client=s3),
        key_prefix=store.key_prefix, staging_dir=transport.staging_dir(),
        stale_upload_age=timedelta(hours=store.stale_upload_hours), packaging=store.packaging_policy(), staging_url=store.staging_url or None,
    )


def _checked_tenant_runs(text: str) -> str:
    from glacier_pipelines.flows.planning import parse_concurrency

    parse_concurrency(text)  # refused at load, naming the variable, not in the middle of a sensor tick
    return text or "1"


def resources_from_env(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The resource instances for ``defs``, from environment variables and their defaults."""
    environ = dict(os.environ) if environ is None else environ
    s = Settings.from_env(environ)
    catalog_url: Any = dg.EnvVar("GLACIER_CATALOG_URL") if environ.get("GLACIER_CATALOG_URL") else s.catalog_url
    # Validate early so a typo is reported at load time, not in the middle of a run.
    s_upload = transfer.UploadSettings(bucket=s.bucket, storage_class=s.storage_class, part_size=s.part_size,
                                       multipart_threshold=s.multipart_threshold, max_concurrency=s.upload_concurrency, sse=s.sse)
    if s.request_transport not in ("embedded", "amqp"):
        raise ValueError(f"GLACIER_REQUEST_TRANSPORT={s.request_transport!r} is not one of 'embedded', 'amqp'")
    for cidr in filter(None, (c.strip() for c in s.source_allowed_networks.split(","))):
        ipaddress.ip_network(cidr, strict=False)
    from glacier_pipelines.resources.restore import RestoreResource
    from glacier_pipelines.resources.vault import VaultResource

    e = lambda name: env(name, environ)  # noqa: E731
    return {
        "restore": RestoreResource(
            events_queue_url=e("GLACIER_RESTORE_EVENTS_QUEUE_URL"), sqs_endpoint_url=e("GLACIER_SQS_ENDPOINT_URL") or None,
            region_name=s.s3_region, pricing_region=e("GLACIER_PRICING_REGION"), max_days=int(e("GLACIER_RESTORE_MAX_DAYS")),
            max_link_seconds=int(e("GLACIER_DOWNLOAD_LINK_MAX_SECONDS")), smtp_host=e("GLACIER_SMTP_HOST"),
            smtp_port=int(e("GLACIER_SMTP_PORT")), smtp_sender=e("GLACIER_SMTP_FROM"), smtp_user=e("GLACIER_SMTP_USER"),
            smtp_password=dg.EnvVar("GLACIER_SMTP_PASSWORD") if environ.get("GLACIER_SMTP_PASSWORD") else "",
            smtp_starttls=e("GLACIER_SMTP_STARTTLS") == "1",
        ),
        "vault": VaultResource(
            endpoint_url=e("GLACIER_VAULT_ENDPOINT_URL") or None, region_name=e("GLACIER_VAULT_REGION"),
            account_id=e("GLACIER_VAULT_ACCOUNT_ID"), tier=e("GLACIER_VAULT_TIER"),
            chunk_size_mb=int(e("GLACIER_VAULT_CHUNK_SIZE_MB")), daily_bytes=int(e("GLACIER_VAULT_DAILY_BYTES")),
            max_jobs_per_run=int(e("GLACIER_VAULT_MAX_JOBS_PER_RUN")),
            expiry_margin_hours=float(e("GLACIER_VAULT_EXPIRY_MARGIN_HOURS")),
            inventory_format=e("GLACIER_VAULT_INVENTORY_FORMAT").upper(), names_csv_path=e("GLACIER_VAULT_NAMES_CSV"),
            key_prefix=e("GLACIER_VAULT_KEY_PREFIX").strip("/"), concurrency=int(e("GLACIER_VAULT_CONCURRENCY")),
            home=str(s.home)),
        "catalog": CatalogResource(url=catalog_url),
        "archive_store": ArchiveStoreResource(
            endpoint_url=s.s3_endpoint_url, region_name=s.s3_region, bucket=s.bucket, storage_class=s_upload.storage_class,
            key_prefix=s.key_prefix, sse=s.sse, kms_key_id=s.kms_key_id, part_size_mb=s.part_size / MiB,
            multipart_threshold_mb=s.multipart_threshold / MiB, upload_concurrency=s.upload_concurrency,
            package_threshold_bytes=int(e("GLACIER_PACKAGE_THRESHOLD_BYTES")), package_tenant_thresholds=e("GLACIER_PACKAGE_TENANT_THRESHOLDS"),
            package_target_bytes=int(e("GLACIER_PACKAGE_TARGET_BYTES")), package_max_age_hours=float(e("GLACIER_PACKAGE_MAX_AGE_HOURS")),
            staging_url=StagingArea.from_setting(e("GLACIER_STAGING_URL"), s.staging_dir).root if e("GLACIER_STAGING_URL") else "",
        ),
        "sources": SourcesResource(roots=s.source_roots, allowed_networks=s.source_allowed_networks, read_timeout=s.source_timeout),
        "request_transport": RequestTransportResource(
            kind=s.request_transport, home=str(s.home), batch_size=s.batch_size, tenants=",".join(s.tenants),
            tenant_runs=_checked_tenant_runs(e("GLACIER_TENANT_RUNS")),
            amqp_url=dg.EnvVar("GLACIER_AMQP_URL") if environ.get("GLACIER_AMQP_URL") else "",
            request_queue=s.request_queue, response_exchange=s.response_exchange,
            response_routing_key=s.response_routing_key, dead_letter_queue=s.dead_letter_queue,
            restore_request_queue=env("GLACIER_RESTORE_REQUEST_QUEUE", environ),
        ),
    }
