"""Resources of the archive path: the catalog, the archive bucket, the sources and the request transport.

``resources_from_env`` (from_env.py) configures them, and the restore and vault resources, from environment variables.
"""

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.core import pricing, transfer
from glacier_pipelines.core.sources import SourcePolicy
from glacier_pipelines.core.amqp import AmqpSettings, AmqpTransport
from glacier_pipelines.core.constants import MiB
from glacier_pipelines.core.tenants import TenantsConfig, TenantsConfigError, load_tenants_config
from glacier_pipelines.core.transport import EmbeddedTransport, Transport
from glacier_pipelines.flows.archive import ArchiveSetup
from glacier_pipelines.flows.packaging import PackagingPolicy
from glacier_pipelines.resources.aws import S3ClientResource

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


class ArchiveStoreResource(S3ClientResource):
    """The destination bucket, its storage class and how uploads are made.

    It is dagster-aws' ``S3Resource`` (``region_name``, ``endpoint_url``, ``profile_name``, set
    from GLACIER_S3_REGION, GLACIER_S3_ENDPOINT_URL and AWS_PROFILE as ``dg.EnvVar``) through
    ``S3ClientResource``, which adds what the upload path needs and S3Resource does not expose:
    botocore's ``standard`` retry mode, a connection pool as large as the part concurrency,
    read timeouts, and no payload signing.
    """

    region_name: str | None = "us-east-1"
    # Every part and object carries its own x-amz-checksum-sha256, which S3 verifies; signing the
    # payload too (botocore does on plain-HTTP endpoints) would hash every byte once more.
    sign_payload: bool | None = False
    bucket: str
    storage_class: str = "DEEP_ARCHIVE"
    key_prefix: str = "archive"
    sse: str | None = None
    kms_key_id: str | None = None
    part_size_mb: float = 16
    multipart_threshold_mb: float = 16
    upload_concurrency: int = 4
    stale_upload_hours: float = 24
    package_threshold_bytes: int = 1024 * 1024
    package_tenant_thresholds: str = ""
    package_target_bytes: int = 256 * 1024 * 1024
    package_max_age_hours: float = 24
    staging_url: str = ""  # GLACIER_STAGING_URL: s3://bucket/prefix for staged small files; empty: $GLACIER_HOME/staging
    fetch_processes: int | None = None  # GLACIER_FETCH_PROCESSES: worker processes reading many local small files (None: by cores)
    tenants_config: str = (
        ""  # GLACIER_TENANTS_CONFIG: per-tenant bucket, prefix, class, SSE, threshold; what it leaves out: the fields above
    )
    compact_deleted_share: float = 0.5  # GLACIER_COMPACT_DELETED_SHARE: a package this much deleted (by bytes) is repacked
    trash_grace_days: float = 30  # GLACIER_TRASH_GRACE_DAYS: how long a trashed file can be untrashed

    def pool_floor(self) -> int:
        return self.upload_concurrency * 2

    def client(self) -> Any:
        """The S3 client of every archive, restore and move step (tests override this one method)."""
        return self.get_client()

    def packaging_policy(self) -> PackagingPolicy:
        return PackagingPolicy.from_strings(
            str(self.package_threshold_bytes),
            str(self.package_target_bytes),
            str(self.package_max_age_hours),
            self.package_tenant_thresholds,
        )

    def tenants(self) -> TenantsConfig:
        """Each tenant's storage settings: the tenants file over this resource's own fields (today's variables).

        Raises TenantsConfigError (a ValueError naming the file, table and field) when the file cannot be used.
        """
        fallback = {
            "GLACIER_BUCKET": self.bucket,
            "GLACIER_KEY_PREFIX": self.key_prefix,
            "GLACIER_STORAGE_CLASS": self.storage_class.upper(),
            "GLACIER_SSE": self.sse or "",
            "GLACIER_SSE_KMS_KEY_ID": self.kms_key_id or "",
            "GLACIER_PACKAGE_THRESHOLD_BYTES": str(self.package_threshold_bytes),
            "GLACIER_PACKAGE_TENANT_THRESHOLDS": self.package_tenant_thresholds,
            "GLACIER_COMPACT_DELETED_SHARE": str(self.compact_deleted_share),
        }
        return load_tenants_config(self.tenants_config or None, environ=fallback)

    def deletion_setup(self, catalog: "CatalogResource", pricing: pricing.Pricing | None = None) -> Any:
        """The safe-deletion path (flows/deletion.py) over this bucket, with each tenant's own ledger place and compaction share."""
        from glacier_pipelines.flows.deletion import DeletionSetup

        tenants = self.tenants()
        return DeletionSetup(
            catalog=catalog.get(),
            s3=self.client(),
            bucket=self.bucket,
            key_prefix=self.key_prefix,
            pricing=pricing,
            compact_share=lambda name: tenants.for_tenant(name).compact_deleted_share,
            tenants=tenants,
        )

    def trash_setup(self, catalog: "CatalogResource", *, move: Any = None, pricing: pricing.Pricing | None = None) -> Any:
        """The operators' trash (flows/trash.py): the grace period, the deletion path after it, and the move for readable objects."""
        from glacier_pipelines.flows.trash import TrashSetup

        return TrashSetup(
            catalog=catalog.get(), deletion=self.deletion_setup(catalog, pricing), grace=timedelta(days=self.trash_grace_days), move=move
        )

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
            return AmqpTransport(
                AmqpSettings(
                    url=url,
                    request_queue=self.request_queue,
                    response_exchange=self.response_exchange,
                    response_routing_key=self.response_routing_key,
                    dead_letter_queue=self.dead_letter_queue,
                )
            )
        raise dg.Failure(f"GLACIER_REQUEST_TRANSPORT={self.kind!r} is not one of 'embedded', 'amqp'")

    def allowed_tenants(self) -> tuple[str, ...]:
        return tuple(x.strip() for x in self.tenants.split(",") if x.strip())

    def staging_dir(self) -> Path:
        return Path(self.home) / "staging"


def archive_setup(
    catalog: CatalogResource, store: ArchiveStoreResource, sources: SourcesResource, transport: RequestTransportResource
) -> ArchiveSetup:
    try:
        tenants = store.tenants()
    except TenantsConfigError as exc:  # a file broken since the code location loaded: no retry can help
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    s3 = store.client()
    return ArchiveSetup(
        catalog=catalog.get(),
        s3=s3,
        upload=store.upload_settings(),
        sources=sources.policy(s3_client=s3),
        key_prefix=store.key_prefix,
        staging_dir=transport.staging_dir(),
        stale_upload_age=timedelta(hours=store.stale_upload_hours),
        packaging=store.packaging_policy(),
        staging_url=store.staging_url or None,
        tenants=tenants,
        fetch_processes=store.fetch_processes,
    )


class TenantBucketError(ValueError):
    """A bucket the tenants file gives is missing or refused: a configuration fault (the CLI exits 2), no request touched."""


class TenantBucketUnreachable(ConnectionError):
    """S3 did not answer about a tenant's bucket: transient (the CLI exits 1), the requests stay pending."""


def check_tenant_buckets(store: ArchiveStoreResource, tenants: list[str]) -> None:
    """One HeadBucket per bucket of these tenants that GLACIER_TENANTS_CONFIG gives, before any run (``process``):
    a missing bucket raises TenantBucketError naming the tenant and the setting."""
    from glacier_pipelines.core import faults
    from glacier_pipelines.flows.placement import check_tenant_bucket

    config = store.tenants()
    if config.source is None:
        return  # every tenant uses GLACIER_BUCKET, which the CLI checks already
    setup = ArchiveSetup(  # only placement is read: no catalog or sources are needed to check a bucket
        catalog=None,  # type: ignore[arg-type]
        s3=store.client(),
        upload=store.upload_settings(),
        sources=None,  # type: ignore[arg-type]
        key_prefix=store.key_prefix,
        staging_dir=Path("."),
        tenants=config,
    )
    seen: set[str] = set()
    for tenant in tenants:
        bucket = config.for_tenant(tenant).bucket
        if bucket in seen:
            continue
        seen.add(bucket)
        try:
            check_tenant_bucket(setup, tenant)
        except faults.ArchiveFault as exc:
            raise (TenantBucketUnreachable if exc.kind == "transient" else TenantBucketError)(str(exc)) from None
