"""checksum_integrity: S3 must report exactly the checksum, size and class that were verified; it answers the requests."""

import dagster as dg

from glacier_pipelines.core import faults
from glacier_pipelines.defs.archive.assets import glacier_objects
from glacier_pipelines.defs.archive.common import md_table, step_fault
from glacier_pipelines.flows import archive as flow
from glacier_pipelines.resources.archive import (
    ArchiveStoreResource,
    CatalogResource,
    RequestTransportResource,
    SourcesResource,
    archive_setup,
)


@dg.asset_check(
    asset=glacier_objects,
    blocking=True,
    description="Reads back each object that stored requests of the tenant wait on (HEAD with checksum mode) and compares "
    "it with the checksum computed during the transfer. Only then are those requests answered: SUCCESS, or "
    "ERROR with the problem (the object is flagged and never offered for deduplication or restore).",
)
def checksum_integrity(
    context: dg.AssetCheckExecutionContext,
    catalog: CatalogResource,
    archive_store: ArchiveStoreResource,
    sources: SourcesResource,
    request_transport: RequestTransportResource,
) -> dg.AssetCheckResult:
    setup = archive_setup(catalog, archive_store, sources, request_transport)
    try:
        report = flow.check_waiting(setup, context.partition_key if context.has_partition_key else None)
    except faults.ArchiveFault as exc:
        raise step_fault(context, exc) from None
    return dg.AssetCheckResult(
        passed=not report.mismatches,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "objects_checked": report.checked,
            "mismatches": len(report.mismatches),
            "answered_success": report.answered["SUCCESS"],
            "answered_error": report.answered["ERROR"],
            "mismatched_objects": md_table(
                ["object", "problem"], [(url, "; ".join(p)) for url, p in report.mismatches], "All objects match."
            ),
            "requests": md_table(
                ["request", "object", "answer"],
                [(f"`{r}`", url, a) for r, url, a in report.requests],
                "No request was waiting for this check.",
            ),
        },
    )
