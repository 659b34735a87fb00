"""catalog_rebuild: the catalog recreated from what the bucket holds, run by hand after a catalog was lost."""

import dagster as dg

from glacier_pipelines.defs.archive.common import OWNERS
from glacier_pipelines.core.tenants import TenantsConfigError
from glacier_pipelines.flows.rebuild import rebuild, scopes
from glacier_pipelines.resources.archive import ArchiveStoreResource, CatalogResource
from glacier_pipelines.resources.vault import VaultResource


@dg.asset(group_name="operations", owners=OWNERS, kinds={"s3", "sql"}, tags={"domain": "operations"})
def catalog_rebuild(
    context: dg.AssetExecutionContext, catalog: CatalogResource, archive_store: ArchiveStoreResource, vault: VaultResource
) -> dg.MaterializeResult:
    """The catalog rebuilt from the bucket (and each configured tenant's own bucket and prefix): package manifests, object metadata, the request ledger (requests and moves), the
    vault ledger (vault copies) and S3's restore states.

    Run by hand (no schedule), like `glacier-pipelines catalog rebuild`; rows that exist are left as they are.
    """
    try:
        tenants = archive_store.tenants()
    except TenantsConfigError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    scanned = [f"s3://{b}/{p}" for b, p, _ in scopes(archive_store.bucket, archive_store.key_prefix, tenants)]
    counts = rebuild(
        catalog.get(),
        archive_store.client(),
        archive_store.bucket,
        archive_store.key_prefix,
        tenants=tenants,
        vault_prefix=vault.key_prefix,
    )
    context.log.info(f"catalog rebuilt from {', '.join(scanned)}: {counts}")
    return dg.MaterializeResult(metadata={**counts, "source": ", ".join(scanned)})
