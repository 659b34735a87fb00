"""Every environment variable the project reads, with its default and meaning.

The README's configuration table is checked against ``ENV_VARS`` by a test, so the two
cannot drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024

# name -> (default, description). An empty default means "unset".
ENV_VARS: dict[str, tuple[str, str]] = {
    "GLACIER_HOME": (".glacier", "Working folder of the embedded default: catalog, request spool, staging area."),
    "GLACIER_S3_ENDPOINT_URL": ("", "S3 endpoint; unset means AWS itself (credentials from the standard AWS chain)."),
    "GLACIER_S3_REGION": ("us-east-1", "Region of the bucket."),
    "GLACIER_BUCKET": ("glacier-archive", "Bucket that receives archived objects."),
    "GLACIER_STORAGE_CLASS": ("DEEP_ARCHIVE", "DEEP_ARCHIVE, GLACIER, GLACIER_IR (STANDARD allowed for testing)."),
    "GLACIER_KEY_PREFIX": ("archive", "Key prefix before the tenant segment."),
    "GLACIER_SSE": ("", "Server-side encryption: unset, AES256, or aws:kms."),
    "GLACIER_SSE_KMS_KEY_ID": ("", "KMS key id when GLACIER_SSE=aws:kms."),
    "GLACIER_PART_SIZE_MB": ("16", "Multipart part size in MiB (memory per in-flight part)."),
    "GLACIER_MULTIPART_THRESHOLD_MB": ("16", "Files above this size (MiB) stream as multipart uploads; smaller ones are staged on disk."),
    "GLACIER_UPLOAD_CONCURRENCY": ("4", "Parts in flight per file."),
    "GLACIER_CATALOG_URL": ("", "SQLAlchemy URL of the catalog; unset means SQLite at $GLACIER_HOME/catalog.sqlite."),
    "GLACIER_SOURCE_ROOTS": ("", "Allowed roots for file:// sources, separated by ',' or ':'; unset refuses file:// sources."),
    "GLACIER_SOURCE_ALLOWED_NETWORKS": ("", "CIDRs that http(s) sources may resolve to despite being private, loopback or link-local."),
    "GLACIER_SOURCE_TIMEOUT": ("60", "Seconds a source may stay silent before the fetch fails (connect timeout is 10 s)."),
    "GLACIER_REQUEST_TRANSPORT": ("embedded", "Where requests arrive: 'embedded' (durable spool folders under $GLACIER_HOME, no broker) or 'amqp'."),
    "GLACIER_AMQP_URL": ("", "Broker URL when GLACIER_REQUEST_TRANSPORT=amqp, e.g. amqp://guest:guest@127.0.0.1:5672/%2F (never logged)."),
    "GLACIER_REQUEST_QUEUE": ("glacier.storage.requests", "Queue the storage requests arrive on."),
    "GLACIER_RESPONSE_EXCHANGE": ("", "Exchange responses are published to; empty means AMQP's default exchange."),
    "GLACIER_RESPONSE_ROUTING_KEY": ("glacier.storage.responses", "Routing key of responses; with the default exchange, a durable queue of that name."),
    "GLACIER_DEAD_LETTER_QUEUE": ("glacier.storage.requests.dlq", "Where invalid requests go, with the reason in header x-dead-letter-reason."),
    "GLACIER_TENANTS": ("", "Comma-separated tenants allowed to submit; unset allows any valid tenant name."),
    "GLACIER_BATCH_SIZE": ("500", "Most requests one run takes for one tenant."),
    "GLACIER_TENANT_RUNS": ("1", "Archive runs of one tenant that may work at once, each on its own batch: N, or a default and per-tenant values (1,lab=4). Raise the run queue's limit on dagster/partition to match."),
    "GLACIER_STAGING_URL": ("", "Where verified small files wait for their upload or package: s3://bucket/prefix (STANDARD) so that steps can run on any machine (Celery, Kubernetes); empty: the local folder $GLACIER_HOME/staging."),
    "GLACIER_PACKAGE_THRESHOLD_BYTES": ("1048576", "Files at or under this size whose request sets activateSmallFilePackaging go into packages."),
    "GLACIER_PACKAGE_TENANT_THRESHOLDS": ("", "Per-tenant thresholds, e.g. lab=65536,museum=2097152 (bytes)."),
    "GLACIER_PACKAGE_TARGET_BYTES": ("268435456", "A package closes and is uploaded when its members reach this size."),
    "GLACIER_PACKAGE_MAX_AGE_HOURS": ("24", "... or when it is this old (package_close_schedule checks hourly)."),
    "GLACIER_RESTORE_EVENTS_QUEUE_URL": ("", "SQS queue receiving S3 or EventBridge restore events; unset means polling x-amz-restore."),
    "GLACIER_SQS_ENDPOINT_URL": ("", "SQS endpoint; unset means AWS itself."),
    "GLACIER_RESTORE_REQUEST_QUEUE": ("", "AMQP queue of restore requests (JSON as for `glacier-pipelines restore --json`); unset: none read."),
    "GLACIER_RESTORE_MAX_DAYS": ("365", "Most days a restored copy may be kept."),
    "GLACIER_DOWNLOAD_LINK_MAX_SECONDS": ("604800", "Longest life of a pre-signed download link (7 days is SigV4's limit; never past the restored copy's expiry)."),
    "GLACIER_PRICING_REGION": ("us-east-1", "Which pricing file under glacier_pipelines/data/pricing/ the cost estimates use."),
    "GLACIER_SMTP_HOST": ("", "SMTP server that tells requesters their files are ready; unset means no email (links stay in the report)."),
    "GLACIER_SMTP_PORT": ("25", "SMTP port."),
    "GLACIER_SMTP_FROM": ("glacier-pipelines@localhost", "Sender address of restore notifications."),
    "GLACIER_SMTP_USER": ("", "SMTP user, if the server wants a login."),
    "GLACIER_SMTP_PASSWORD": ("", "SMTP password (never logged)."),
    "GLACIER_SMTP_STARTTLS": ("0", "1 upgrades the SMTP connection with STARTTLS."),
    "GLACIER_VAULT_ENDPOINT_URL": ("", "Glacier (vault API) endpoint; unset means AWS itself."),
    "GLACIER_VAULT_REGION": ("us-east-1", "Region of the source vaults."),
    "GLACIER_VAULT_ACCOUNT_ID": ("-", "Account id of the vaults; '-' means the credentials' own account."),
    "GLACIER_VAULT_TIER": ("Bulk", "Tier of archive-retrieval jobs: Bulk, Standard or Expedited."),
    "GLACIER_VAULT_CHUNK_SIZE_MB": ("64", "Range fetched and uploaded as one part (MiB, rounded down to a power of two, at least 8)."),
    "GLACIER_VAULT_DAILY_BYTES": ("1099511627776", "Bytes of retrieval jobs started per 24 h over all vaults (0: no limit)."),
    "GLACIER_VAULT_MAX_JOBS_PER_RUN": ("1000", "Retrieval jobs started per run."),
    "GLACIER_VAULT_EXPIRY_MARGIN_HOURS": ("19", "A job output completed longer ago than this and not yet copied is requested again."),
    "GLACIER_VAULT_INVENTORY_FORMAT": ("CSV", "Format of inventory-retrieval jobs: CSV or JSON."),
    "GLACIER_VAULT_NAMES_CSV": ("", "CSV of 'archive id,name' overriding names derived from archive descriptions."),
    "GLACIER_VAULT_KEY_PREFIX": ("vaults", "Key prefix of vault copies: <prefix>/<vault>/<name>."),
    "GLACIER_VAULT_CONCURRENCY": ("2", "Archives copied at once (memory: about chunk size x this)."),
    "GLACIER_LIFECYCLE_CONFIG": ("", "TOML (or .json) file of per-tenant lifecycle rules, move sources and trash prefix; unset: lifecycle_rules changes nothing."),
    "GLACIER_COPY_THRESHOLD_MB": ("5120", "Server-side moves copy objects above this size (MiB) by multipart UploadPartCopy; CopyObject takes at most 5 GiB."),
    "GLACIER_COPY_PART_SIZE_MB": ("512", "Part size (MiB) of multipart server-side copies (grown so no object needs more than 10,000 parts)."),
    "GLACIER_SENSORS_RUNNING": ("0", "1 starts sensors and schedules when the Dagster daemon loads the code location, each only if what it watches is configured (else off, with a log line saying why)."),
    "GLACIER_SENSOR_INTERVAL_SECONDS": ("", "Minimum interval of every sensor in seconds; unset keeps each sensor's own (intake 30, restore 60, vault 300)."),
    "GLACIER_EXECUTOR": ("multiprocess", "Executor of every job: multiprocess, in_process, k8s (dagster-k8s k8s_job_executor) or celery (dagster-celery); k8s and celery need the 'deploy' extra."),
    "GLACIER_EXECUTOR_CONFIG": ("", "Run-config YAML whose execution.config configures that executor (deploy/executors/*.yaml); unset: the executor's defaults."),
}


def env(name: str, environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    value = environ.get(name, "")
    return value if value != "" else ENV_VARS[name][0]


@dataclass(frozen=True)
class Settings:
    """Resolved configuration, for the CLI and for building resources."""

    home: Path
    s3_endpoint_url: str | None
    s3_region: str
    bucket: str
    storage_class: str
    key_prefix: str
    sse: str | None
    kms_key_id: str | None
    part_size: int
    multipart_threshold: int
    upload_concurrency: int
    catalog_url: str
    source_roots: str
    source_allowed_networks: str
    source_timeout: float
    request_transport: str
    amqp_url: str
    request_queue: str
    response_exchange: str
    response_routing_key: str
    dead_letter_queue: str
    tenants: tuple[str, ...]
    batch_size: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        e = lambda name: env(name, environ)  # noqa: E731
        home = Path(e("GLACIER_HOME")).expanduser().resolve()
        return cls(
            home=home,
            s3_endpoint_url=e("GLACIER_S3_ENDPOINT_URL") or None,
            s3_region=e("GLACIER_S3_REGION"),
            bucket=e("GLACIER_BUCKET"),
            storage_class=e("GLACIER_STORAGE_CLASS").upper(),
            key_prefix=e("GLACIER_KEY_PREFIX").strip("/"),
            sse=e("GLACIER_SSE") or None,
            kms_key_id=e("GLACIER_SSE_KMS_KEY_ID") or None,
            part_size=int(float(e("GLACIER_PART_SIZE_MB")) * MiB),
            multipart_threshold=int(float(e("GLACIER_MULTIPART_THRESHOLD_MB")) * MiB),
            upload_concurrency=int(e("GLACIER_UPLOAD_CONCURRENCY")),
            catalog_url=e("GLACIER_CATALOG_URL") or f"sqlite:///{home / 'catalog.sqlite'}",
            source_roots=e("GLACIER_SOURCE_ROOTS"),
            source_allowed_networks=e("GLACIER_SOURCE_ALLOWED_NETWORKS"),
            source_timeout=float(e("GLACIER_SOURCE_TIMEOUT")),
            request_transport=e("GLACIER_REQUEST_TRANSPORT").lower(),
            amqp_url=e("GLACIER_AMQP_URL"),
            request_queue=e("GLACIER_REQUEST_QUEUE"),
            response_exchange=e("GLACIER_RESPONSE_EXCHANGE"),
            response_routing_key=e("GLACIER_RESPONSE_ROUTING_KEY"),
            dead_letter_queue=e("GLACIER_DEAD_LETTER_QUEUE"),
            tenants=tuple(x.strip() for x in e("GLACIER_TENANTS").split(",") if x.strip()),
            batch_size=int(e("GLACIER_BATCH_SIZE")),
        )

    @property
    def spool_dir(self) -> Path:
        return self.home / "spool"

    @property
    def staging_dir(self) -> Path:
        return self.home / "staging"
