"""``Settings``: the resolved configuration the CLI and the resources build from (sizes in bytes, paths resolved)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from glacier_pipelines.core.constants import MiB
from glacier_pipelines.settings.loading import load
from glacier_pipelines.settings.model import GlacierSettings
from glacier_pipelines.settings.variables import as_text


@dataclass(frozen=True)
class Settings:
    """Resolved configuration, for the CLI and for building resources (a view of ``GlacierSettings``)."""

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
    def from_model(cls, m: GlacierSettings) -> "Settings":
        return cls(
            home=m.home_dir,
            s3_endpoint_url=m.s3_endpoint_url,
            s3_region=m.s3_region,
            bucket=m.bucket,
            storage_class=m.storage_class,
            key_prefix=m.key_prefix,
            sse=m.sse,
            kms_key_id=m.sse_kms_key_id,
            part_size=int(m.part_size_mb * MiB),
            multipart_threshold=int(m.multipart_threshold_mb * MiB),
            upload_concurrency=m.upload_concurrency,
            catalog_url=m.resolved_catalog_url,
            source_roots=as_text(m.source_roots),
            source_allowed_networks=as_text(m.source_allowed_networks),
            source_timeout=m.source_timeout,
            request_transport=m.request_transport,
            amqp_url=m.amqp_url or "",
            request_queue=m.request_queue,
            response_exchange=m.response_exchange,
            response_routing_key=m.response_routing_key,
            dead_letter_queue=m.dead_letter_queue,
            tenants=m.tenants,
            batch_size=m.batch_size,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        return cls.from_model(load(environ))

    @property
    def spool_dir(self) -> Path:
        return self.home / "spool"

    @property
    def staging_dir(self) -> Path:
        return self.home / "staging"
