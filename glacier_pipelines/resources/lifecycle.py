"""The lifecycle declaration and how server-side moves copy: the GLACIER_LIFECYCLE_CONFIG and GLACIER_COPY_* variables."""

from __future__ import annotations

from typing import Any

import dagster as dg

from glacier_pipelines.core import lifecycle, pricing
from glacier_pipelines.core.constants import MiB
from glacier_pipelines.core.moves import CopySettings
from glacier_pipelines.core.tenants import TenantsConfigError
from glacier_pipelines.flows.moves import MoveSetup
from glacier_pipelines.resources.archive import ArchiveStoreResource, CatalogResource, pricing_or_none
from glacier_pipelines.settings import load


class LifecycleResource(dg.ConfigurableResource):
    """Per-tenant lifecycle rules and move sources (a TOML or JSON file), and the sizes of server-side copies."""

    config_path: str = ""  # empty: no declaration, lifecycle_rules leaves buckets as they are
    copy_threshold_mb: float = 5120  # above this, multipart UploadPartCopy (CopyObject takes at most 5 GiB)
    copy_part_size_mb: float = 512
    pricing_region: str = "us-east-1"

    def config(self, archive_store: ArchiveStoreResource, *, per_tenant: bool = True) -> lifecycle.LifecycleConfig:
        """The declaration placed in the deployment; ``per_tenant``: each tenant's rules and restored-copies backstop on its own
        bucket and prefix (GLACIER_TENANTS_CONFIG), as lifecycle_rules applies them."""
        placements = self._placements(archive_store) if per_tenant else None
        try:
            return lifecycle.load_config(
                self.config_path or None, bucket=archive_store.bucket, key_prefix=archive_store.key_prefix, placements=placements
            )
        except lifecycle.LifecycleConfigError as exc:
            raise dg.Failure(
                description=str(exc),
                metadata={"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in exc.problems))},
                allow_retries=False,
            ) from None

    @staticmethod
    def _placements(archive_store: ArchiveStoreResource) -> dict[str, tuple[str, str]]:
        try:
            tenants = archive_store.tenants()
        except TenantsConfigError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        return {name: (tenants.for_tenant(name).bucket, tenants.for_tenant(name).key_prefix) for name in tenants.names}

    def pricing(self) -> pricing.Pricing | None:
        return pricing_or_none(self.pricing_region)

    def setup(self, catalog: CatalogResource, archive_store: ArchiveStoreResource) -> MoveSetup:
        try:
            copy = CopySettings(
                storage_class=archive_store.storage_class.upper(),
                multipart_threshold=int(self.copy_threshold_mb * MiB),
                part_size=int(self.copy_part_size_mb * MiB),
                concurrency=archive_store.upload_concurrency,
            )
        except ValueError as exc:
            raise dg.Failure(f"server-side copy settings: {exc}", allow_retries=False) from None
        # Moves still work on the global bucket (MoveSetup.bucket), so their tenants' prefixes stay the global ones.
        return MoveSetup(
            catalog=catalog.get(),
            s3=archive_store.client(),
            bucket=archive_store.bucket,
            key_prefix=archive_store.key_prefix,
            lifecycle=self.config(archive_store, per_tenant=False),
            copy=copy,
            pricing=self.pricing(),
        )


def lifecycle_resource_from_env(environ: dict[str, str] | None = None) -> LifecycleResource:
    m = load(environ)  # validated: a bad GLACIER_COPY_* value is refused here, at load
    return LifecycleResource(
        config_path=m.lifecycle_config,
        copy_threshold_mb=m.copy_threshold_mb,
        copy_part_size_mb=m.copy_part_size_mb,
        pricing_region=m.pricing_region,
    )


def with_lifecycle(resources: dict[str, Any]) -> dict[str, Any]:
    """``resources`` plus a ``lifecycle`` resource from the environment when they have none."""
    return resources if "lifecycle" in resources else {**resources, "lifecycle": lifecycle_resource_from_env()}
