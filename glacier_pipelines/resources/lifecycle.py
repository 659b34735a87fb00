"""The lifecycle declaration and how server-side moves copy: the GLACIER_LIFECYCLE_CONFIG and GLACIER_COPY_* variables."""

from __future__ import annotations

from typing import Any

import dagster as dg

from glacier_pipelines.core import lifecycle, pricing
from glacier_pipelines.core.moves import CopySettings
from glacier_pipelines.flows.moves import MoveSetup
from glacier_pipelines.resources.archive import ArchiveStoreResource, CatalogResource, pricing_or_none
from glacier_pipelines.settings import MiB, load


class LifecycleResource(dg.ConfigurableResource):
    """Per-tenant lifecycle rules and move sources (a TOML or JSON file), and the sizes of server-side copies."""

    config_path: str = ""  # empty: no declaration, lifecycle_rules leaves buckets as they are
    copy_threshold_mb: float = 5120  # above this, multipart UploadPartCopy (CopyObject takes at most 5 GiB)
    copy_part_size_mb: float = 512
    pricing_region: str = "us-east-1"

    def config(self, archive_store: ArchiveStoreResource) -> lifecycle.LifecycleConfig:
        try:
            return lifecycle.load_config(self.config_path or None, bucket=archive_store.bucket, key_prefix=archive_store.key_prefix)
        except lifecycle.LifecycleConfigError as exc:
            raise dg.Failure(description=str(exc), metadata={"problems": dg.MetadataValue.md(
                "\n".join(f"- {p}" for p in exc.problems))}, allow_retries=False) from None

    def pricing(self) -> pricing.Pricing | None:
        return pricing_or_none(self.pricing_region)

    def setup(self, catalog: CatalogResource, archive_store: ArchiveStoreResource) -> MoveSetup:
        try:
            copy = CopySettings(storage_class=archive_store.storage_class.upper(), multipart_threshold=int(self.copy_threshold_mb * MiB),
                                part_size=int(self.copy_part_size_mb * MiB), concurrency=archive_store.upload_concurrency)
        except ValueError as exc:
            raise dg.Failure(f"server-side copy settings: {exc}", allow_retries=False) from None
        return MoveSetup(catalog=catalog.get(), s3=archive_store.client(), bucket=archive_store.bucket,
                         key_prefix=archive_store.key_prefix, lifecycle=self.config(archive_store), copy=copy, pricing=self.pricing())


def lifecycle_resource_from_env(environ: dict[str, str] | None = None) -> LifecycleResource:
    m = load(environ)  # validated: a bad GLACIER_COPY_* value is refused here, at load
    return LifecycleResource(config_path=m.lifecycle_config, copy_threshold_mb=m.copy_threshold_mb,
                             copy_part_size_mb=m.copy_part_size_mb, pricing_region=m.pricing_region)


def with_lifecycle(resources: dict[str, Any]) -> dict[str, Any]:
    """``resources`` plus a ``lifecycle`` resource from the environment when they have none."""
    return resources if "lifecycle" in resources else {**resources, "lifecycle": lifecycle_resource_from_env()}
