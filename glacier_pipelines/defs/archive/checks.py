"""checksum_integrity: S3 must report exactly the checksum, size and class that were verified."""


import dagster as dg

from glacier_pipelines.defs.archive.assets import _batch_id, glacier_objects
from glacier_pipelines.flows import archive as flow
from glacier_pipelines.resources.archive import (
    ArchiveStoreResource,
    CatalogResource,
    RequestTransportResource,
    SourcesResource,
    archive_setup,
)


@dg.asset_check(asset=glacier_objects, blocking=True, description="Reads back each object of the batch (HEAD with checksum mode) and compares it with the checksum computed during the transfer.")
def checksum_integrity(
    context: dg.AssetCheckExecutionContext,
    catalog: CatalogResource,
    archive_store: ArchiveStoreResource,
    sources: SourcesResource,
    request_transport: RequestTransportResource,
) -> dg.AssetCheckResult:
    setup = archive_setup(catalog, archive_store, sources, request_transport)
    batch_id = _batch_id(context, catalog)  # type: ignore[arg-type]
    checked, mismatches = flow.check_batch(setup, batch_id)
    rows = "\n".join(f"| {url} | {'; '.join(problems)} |" for url, problems in mismatches[:200])
    return dg.AssetCheckResult(
        passed=not mismatches,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "batch_id": batch_id,
            "objects_checked": checked,
            "mismatches": len(mismatches),
            "mismatched_objects": dg.MetadataValue.md(f"| object | problem |\n|---|---|\n{rows}" if mismatches else "All objects match."),
        },
    )
