"""``GlacierSettings``: every ``GLACIER_*`` variable (and ``DAGSTER_HOME``) as one typed field with its default, range and meaning.

A new variable is a new field here; ``python -m glacier_pipelines.settings docs/configuration.md``
then regenerates the documented table from it (settings/table.py).
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from glacier_pipelines.core.constants import STORAGE_CLASSES
from glacier_pipelines.settings.environ import MappingEnvSource

PREFIX = "GLACIER_"


def _var(default: Any, description: str, expected: str | None = None, *, secret: bool = False, **constraints: Any) -> Any:
    """A field: its default, the README's meaning, what it accepts (derived from the constraints unless given)."""
    extra: dict[str, Any] = {k: v for k, v in {"expected": expected, "secret": secret or None}.items() if v}
    return Field(default, description=description, json_schema_extra=extra or None, **constraints)


Csv = Annotated[tuple[str, ...], NoDecode]  # from the environment as a comma-separated string
Thresholds = Annotated[tuple[tuple[str, int], ...], NoDecode]  # tenant=bytes,tenant=bytes


class GlacierSettings(BaseSettings):
    """The configuration, typed. Field ``x`` is read from ``GLACIER_X`` (``dagster_home`` from ``DAGSTER_HOME``)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, case_sensitive=False, env_ignore_empty=True, extra="ignore", frozen=True)

    home: Path = _var(Path(".glacier"), "Working folder of the embedded default: catalog, request spool, staging area.", "a folder path")
    dagster_home: Path | None = Field(
        None,
        validation_alias="DAGSTER_HOME",
        description=(
            "Folder of the Dagster instance (dagster.yaml, run history); must be absolute. Unset: the CLI uses $GLACIER_HOME/dagster."
        ),
        json_schema_extra={"expected": "an absolute folder path"},
    )
    s3_endpoint_url: str | None = _var(
        None, "S3 endpoint; unset means AWS itself (credentials from the standard AWS chain).", "an http:// or https:// URL"
    )
    s3_region: str = _var("us-east-1", "Region of the bucket.", "an AWS region name such as eu-west-1", pattern=r"^[a-z0-9-]+$")
    bucket: str = _var("glacier-archive", "Bucket that receives archived objects.", "a bucket name", min_length=1)
    storage_class: Literal["DEEP_ARCHIVE", "GLACIER", "GLACIER_IR", "STANDARD"] = _var(
        "DEEP_ARCHIVE",
        "DEEP_ARCHIVE, GLACIER, GLACIER_IR (STANDARD allowed for testing).",
        f"a storage class among {', '.join(STORAGE_CLASSES)}",
    )
    key_prefix: str = _var("archive", "Key prefix before the tenant segment.", "a key prefix")
    sse: Literal["AES256", "aws:kms"] | None = _var(None, "Server-side encryption: unset, AES256, or aws:kms.", "unset, AES256 or aws:kms")
    sse_kms_key_id: str | None = _var(None, "KMS key id when GLACIER_SSE=aws:kms.", "a KMS key id or ARN")
    part_size_mb: float = _var(16, "Multipart part size in MiB (memory per in-flight part).", ge=5, le=5120)
    multipart_threshold_mb: float = _var(
        16, "Files above this size (MiB) stream as multipart uploads; smaller ones are staged on disk.", gt=0
    )
    upload_concurrency: int = _var(4, "Parts in flight per file.", ge=1, le=64)
    catalog_url: str | None = _var(
        None,
        "SQLAlchemy URL of the catalog; unset means SQLite at $GLACIER_HOME/catalog.sqlite.",
        "a URL sqlite:///PATH or postgresql[+driver]://...",
        secret=True,
    )
    source_roots: Csv = _var(
        (),
        "Allowed roots for file:// sources, separated by ',' or ':'; unset refuses file:// sources.",
        "folder paths separated by ',' or ':'",
    )
    source_allowed_networks: Csv = _var(
        (),
        "CIDRs that http(s) sources may resolve to despite being private, loopback or link-local.",
        "comma-separated networks such as 10.0.0.0/8,127.0.0.1",
    )
    source_timeout: float = _var(60, "Seconds a source may stay silent before the fetch fails (connect timeout is 10 s).", gt=0, le=3600)
    request_transport: Literal["embedded", "amqp"] = _var(
        "embedded",
        "Where requests arrive: 'embedded' (durable spool folders under $GLACIER_HOME, no broker) or 'amqp'.",
        "one of embedded, amqp",
    )
    amqp_url: str | None = _var(
        None,
        "Broker URL when GLACIER_REQUEST_TRANSPORT=amqp, e.g. amqp://guest:guest@127.0.0.1:5672/%2F (never logged).",
        "an amqp:// or amqps:// URL",
        secret=True,
    )
    request_queue: str = _var("glacier.storage.requests", "Queue the storage requests arrive on.", "a queue name", min_length=1)
    response_exchange: str = _var("", "Exchange responses are published to; empty means AMQP's default exchange.", "an exchange name")
    response_routing_key: str = _var(
        "glacier.storage.responses",
        "Routing key of responses; with the default exchange, a durable queue of that name.",
        "a routing key",
        min_length=1,
    )
    dead_letter_queue: str = _var(
        "glacier.storage.requests.dlq",
        "Where invalid requests go, with the reason in header x-dead-letter-reason.",
        "a queue name",
        min_length=1,
    )
    tenants: Csv = _var(
        (), "Comma-separated tenants allowed to submit; unset allows any valid tenant name.", "comma-separated tenant names"
    )
    tenants_config: str = _var(
        "",
        "TOML file of per-tenant settings (bucket, key prefix, storage class, restore tier and days, SSE, small-file "
        "threshold); what it leaves out falls back to these variables. Unset: every tenant uses these variables.",
        "a file path",
    )
    batch_size: int = _var(500, "Most requests one run takes for one tenant.", ge=1)
    tenant_runs: str = _var(
        "1",
        "Archive runs of one tenant that may work at once, each on its own batch: N, or a default and per-tenant values "
        "(1,lab=4). Raise the run queue's limit on dagster/partition to match.",
        "N or N,tenant=N,... with each N a whole number >= 1",
    )
    staging_url: str = _var(
        "",
        "Where verified small files wait for their upload or package: s3://bucket/prefix (STANDARD) so that steps can run on "
        "any machine (Celery, Kubernetes); empty: the local folder $GLACIER_HOME/staging.",
        "s3://bucket/prefix or a folder path",
    )
    fetch_processes: int | None = _var(
        None,
        "Worker processes that read and hash local small files (file:// package candidates) beside the verify step, once a "
        "batch holds 512 of them; unset: 2 on a machine with 2 or more cores, else none; 0 turns them off.",
        ge=0,
    )
    package_threshold_bytes: int = _var(
        1048576, "Files at or under this size whose request sets activateSmallFilePackaging go into packages.", ge=0
    )
    package_tenant_thresholds: Thresholds = _var(
        (), "Per-tenant thresholds, e.g. lab=65536,museum=2097152 (bytes).", "comma-separated tenant=bytes pairs such as lab=65536"
    )
    package_target_bytes: int = _var(268435456, "A package closes and is uploaded when its members reach this size.", ge=1)
    package_max_age_hours: float = _var(24, "... or when it is this old (package_close_schedule checks hourly).", ge=0)
    restore_events_queue_url: str | None = _var(
        None,
        "SQS queue receiving S3 or EventBridge restore events; unset means polling x-amz-restore.",
        "an http:// or https:// SQS queue URL",
    )
    sqs_endpoint_url: str | None = _var(None, "SQS endpoint; unset means AWS itself.", "an http:// or https:// URL")
    restore_request_queue: str = _var(
        "", "AMQP queue of restore requests (JSON as for `glacier-pipelines restore --json`); unset: none read.", "a queue name"
    )
    restore_max_days: int = _var(365, "Most days a restored copy may be kept.", ge=1, le=36500)
    download_link_max_seconds: int = _var(
        604800,
        "Longest life of a pre-signed download link (7 days is SigV4's limit; never past the restored copy's expiry).",
        ge=1,
        le=604800,
    )
    pricing_region: str = _var(
        "us-east-1",
        "Which pricing file under glacier_pipelines/data/pricing/ the cost estimates use.",
        "an AWS region name such as eu-west-1",
        pattern=r"^[a-z0-9-]+$",
    )
    smtp_host: str = _var(
        "", "SMTP server that tells requesters their files are ready; unset means no email (links stay in the report).", "a host name"
    )
    smtp_port: int = _var(25, "SMTP port.", ge=1, le=65535)
    smtp_from: str = _var(
        "glacier-pipelines@localhost", "Sender address of restore notifications.", "an email address", pattern=r"^[^@\s]+@[^@\s]+$"
    )
    smtp_user: str = _var("", "SMTP user, if the server wants a login.", "a user name")
    smtp_password: str = _var("", "SMTP password (never logged).", "a password", secret=True)
    smtp_starttls: bool = _var(False, "1 upgrades the SMTP connection with STARTTLS.", "0 or 1")
    vault_endpoint_url: str | None = _var(None, "Glacier (vault API) endpoint; unset means AWS itself.", "an http:// or https:// URL")
    vault_region: str = _var("us-east-1", "Region of the source vaults.", "an AWS region name such as eu-west-1", pattern=r"^[a-z0-9-]+$")
    vault_account_id: str = _var(
        "-", "Account id of the vaults; '-' means the credentials' own account.", "- or a 12-digit account id", pattern=r"^(-|\d{12})$"
    )
    vault_tier: Literal["Bulk", "Standard", "Expedited"] = _var(
        "Bulk", "Tier of archive-retrieval jobs: Bulk, Standard or Expedited.", "one of Bulk, Standard, Expedited"
    )
    vault_chunk_size_mb: int = _var(
        64, "Range fetched and uploaded as one part (MiB, rounded down to a power of two, at least 8).", ge=1, le=4096
    )
    vault_daily_bytes: int = _var(1099511627776, "Bytes of retrieval jobs started per 24 h over all vaults (0: no limit).", ge=0)
    vault_max_jobs_per_run: int = _var(1000, "Retrieval jobs started per run.", ge=1)
    vault_expiry_margin_hours: float = _var(
        19, "A job output completed longer ago than this and not yet copied is requested again.", ge=0, le=24
    )
    vault_inventory_format: Literal["CSV", "JSON"] = _var("CSV", "Format of inventory-retrieval jobs: CSV or JSON.", "one of CSV, JSON")
    vault_names_csv: str = _var("", "CSV of 'archive id,name' overriding names derived from archive descriptions.", "a file path")
    vault_key_prefix: str = _var("vaults", "Key prefix of vault copies: <prefix>/<vault>/<name>.", "a key prefix")
    vault_concurrency: int = _var(2, "Archives copied at once (memory: about chunk size x this).", ge=1, le=64)
    lifecycle_config: str = _var(
        "",
        "TOML (or .json) file of per-tenant lifecycle rules, move sources and trash prefix; unset: lifecycle_rules changes nothing.",
        "a file path",
    )
    compact_deleted_share: float = _var(
        0.5,
        "A stored package whose deleted members reach this share of its bytes is repacked by package_compaction "
        "(per tenant: compact_deleted_share in GLACIER_TENANTS_CONFIG).",
        gt=0,
        le=1,
    )
    trash_grace_days: float = _var(
        30,
        "Days a file put in the trash (glacier-pipelines trash) can still be untrashed; then trash_purge deletes it "
        "through the safe-deletion path.",
        ge=0,
        le=36500,
    )
    copy_threshold_mb: float = _var(
        5120,
        "Server-side moves copy objects above this size (MiB) by multipart UploadPartCopy; CopyObject takes at most 5 GiB.",
        gt=0,
        le=5120,
    )
    copy_part_size_mb: float = _var(
        512, "Part size (MiB) of multipart server-side copies (grown so no object needs more than 10,000 parts).", ge=5, le=5120
    )
    sensors_running: bool = _var(
        False,
        "1 starts sensors and schedules when the Dagster daemon loads the code location, each only if what it watches is "
        "configured (else off, with a log line saying why).",
        "0 or 1",
    )
    sensor_interval_seconds: int | None = _var(
        None,
        "Minimum interval of every sensor in seconds; unset keeps each sensor's own (intake 30, restore 60, vault 300).",
        ge=1,
        le=86400,
    )
    executor: Literal["multiprocess", "in_process", "k8s", "celery"] = _var(
        "multiprocess",
        "Executor of every job: multiprocess, in_process, k8s (dagster-k8s k8s_job_executor) or celery (dagster-celery); k8s and celery need "
        "the 'deploy' extra.",
        "one of multiprocess, in_process, k8s, celery",
    )
    executor_config: str = _var(
        "",
        "Run-config YAML whose execution.config configures that executor (deploy/executors/*.yaml); unset: the executor's defaults.",
        "a file path",
    )

    # -- normalizing what people type ------------------------------------------------------------------
    @field_validator("storage_class", "vault_inventory_format", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v

    @field_validator("request_transport", "executor", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v

    @field_validator("vault_tier", mode="before")
    @classmethod
    def _capitalized(cls, v: Any) -> Any:
        return v.strip().capitalize() if isinstance(v, str) else v

    @field_validator("sse", mode="before")
    @classmethod
    def _sse(cls, v: Any) -> Any:
        return {"aes256": "AES256", "aws:kms": "aws:kms"}.get(v.strip().lower(), v) if isinstance(v, str) else v

    @field_validator("key_prefix", "vault_key_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        return v.strip("/")

    @field_validator("source_roots", mode="before")
    @classmethod
    def _roots(cls, v: Any) -> Any:
        return tuple(x.strip() for x in re.split(f"[,{re.escape(os.pathsep)}]", v) if x.strip()) if isinstance(v, str) else v

    @field_validator("tenants", mode="before")
    @classmethod
    def _csv(cls, v: Any) -> Any:
        return tuple(x.strip() for x in v.split(",") if x.strip()) if isinstance(v, str) else v

    @field_validator("source_allowed_networks", mode="before")
    @classmethod
    def _networks(cls, v: Any) -> Any:
        items = tuple(x.strip() for x in v.split(",") if x.strip()) if isinstance(v, str) else tuple(v)
        for item in items:
            ipaddress.ip_network(item, strict=False)  # ValueError names nothing useful: the message comes from `expected`
        return items

    @field_validator("package_tenant_thresholds", mode="before")
    @classmethod
    def _thresholds(cls, v: Any) -> Any:
        if not isinstance(v, str):
            return v
        pairs = []
        for item in filter(None, (x.strip() for x in v.split(","))):
            tenant, sep, value = item.partition("=")
            if not sep or not tenant.strip() or not value.strip().isdigit():
                raise ValueError(item)
            pairs.append((tenant.strip(), int(value)))
        return tuple(pairs)

    @field_validator("tenant_runs")
    @classmethod
    def _tenant_runs(cls, v: str) -> str:
        for item in filter(None, (x.strip() for x in v.split(","))):
            name, sep, number = item.rpartition("=")
            if not number.strip().isdigit() or int(number) < 1 or (sep and not name.strip()):
                raise ValueError(item)
        return v.strip() or "1"

    @field_validator("s3_endpoint_url", "sqs_endpoint_url", "vault_endpoint_url", "restore_events_queue_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None:
            parts = urlsplit(v.strip())
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(v)
            return v.strip()
        return v

    @field_validator("catalog_url")
    @classmethod
    def _catalog_url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^(sqlite(\+\w+)?:///|postgresql(\+\w+)?://)", v.strip()):
            raise ValueError("scheme")
        return v.strip() if v else v

    @field_validator("amqp_url")
    @classmethod
    def _amqp_url(cls, v: str | None) -> str | None:
        if v is not None and urlsplit(v.strip()).scheme not in ("amqp", "amqps"):
            raise ValueError("scheme")
        return v

    @field_validator("dagster_home")
    @classmethod
    def _absolute(cls, v: Path | None) -> Path | None:
        if v is not None and not v.expanduser().is_absolute():
            raise ValueError("relative")
        return v.expanduser() if v is not None else v

    # -- sources: the given environment only (no .env file, no secrets folder) -----------------------------
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, MappingEnvSource(settings_cls)

    # -- derived values ----------------------------------------------------------------------------------
    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def resolved_catalog_url(self) -> str:
        return self.catalog_url or f"sqlite:///{self.home_dir / 'catalog.sqlite'}"

    @property
    def resolved_dagster_home(self) -> Path:
        return self.dagster_home or self.home_dir / "dagster"
