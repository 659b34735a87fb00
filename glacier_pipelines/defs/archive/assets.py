"""Archive path assets, partitioned by tenant: ingest_batch -> verified_files -> glacier_objects.

Each asset stands alone: it works on what the catalog holds waiting for its step in that
tenant's partition (claimed, verified, stored), in the batches its run may take (its own, or
those of runs that are over). So any asset can be materialized, re-materialized or backfilled
by itself, and runs started by sensors, the CLI, the UI and backfills all take the same path.
"""

import dagster as dg

from glacier_pipelines.core import faults
from glacier_pipelines.defs.archive.common import OWNERS, RETRY, S3_UPLOADS, md_table, root_run_id, run_finished, step_fault
from glacier_pipelines.defs.partitions import tenants
from glacier_pipelines.flows import archive as flow
from glacier_pipelines.resources.archive import (
    ArchiveStoreResource,
    CatalogResource,
    RequestTransportResource,
    SourcesResource,
    archive_setup,
)

__all__ = ["OWNERS", "S3_UPLOADS", "RETRY", "ingest_batch", "verified_files", "glacier_objects"]


def _failures_table(failed: list[tuple[str, str]]) -> dg.MetadataValue:
    return md_table(["request", "reason"], [(f"`{rid}`", reason) for rid, reason in failed], "No failures.")


def _nothing_waiting(step: str) -> dict:
    return {"nothing_waiting": True, "note": f"nothing was waiting for {step} in this partition"}


@dg.asset(
    partitions_def=tenants,
    group_name="archive",
    owners=OWNERS,
    kinds={"python", "sql"},
    tags={"domain": "archive"},
)
def ingest_batch(
    context: dg.AssetExecutionContext, catalog: CatalogResource, request_transport: RequestTransportResource
) -> dg.MaterializeResult:
    """The tenant's pending storage requests, claimed from the catalog into a durable batch (id, request ids, time)."""
    tenant = context.partition_key
    run_id = root_run_id(context)
    batch_id, count = flow.claim_batch(catalog.get(), tenant, run_id, request_transport.batch_size, run_finished(context))
    rows = catalog.get().batch_requests(batch_id)
    context.log.info(f"batch {batch_id}: {count} request(s) for tenant {tenant}")
    return dg.MaterializeResult(
        metadata={
            "batch_id": batch_id,
            "tenant": tenant,
            "requests": count,
            # A table an auditor can search from the UI: `glacier-pipelines audit REQUEST_ID` tells each request's story.
            "request_ids": md_table(
                ["request", "batch", "run"], [(f"`{r.request_id}`", f"`{batch_id}`", f"`{run_id}`") for r in rows], "No requests."
            ),
            **({} if count else _nothing_waiting("ingest_batch")),
        }
    )


@dg.asset(
    partitions_def=tenants,
    deps=[ingest_batch],
    group_name="archive",
    owners=OWNERS,
    kinds={"python", "s3"},
    tags={"domain": "archive"},
    retry_policy=RETRY,
)
def verified_files(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    archive_store: ArchiveStoreResource,
    sources: SourcesResource,
    request_transport: RequestTransportResource,
) -> dg.MaterializeResult:
    """Each claimed file of the tenant fetched once, checksum-verified, measured (size, image width/height) and staged."""
    setup = archive_setup(catalog, archive_store, sources, request_transport)
    try:
        report = flow.verify_waiting(setup, context.partition_key, root_run_id(context), run_finished(context))
    except faults.ArchiveFault as exc:
        raise step_fault(context, exc) from None
    context.log.info(f"verified {report.verified}, deduplicated {report.deduplicated}, failed {len(report.failed)}")
    return dg.MaterializeResult(
        metadata={
            "batch_ids": ", ".join(report.batches) or "none",
            "requested": report.considered,
            "verified": report.verified,
            "deduplicated": report.deduplicated,
            "failed": len(report.failed),
            "bytes_verified": report.bytes,
            "request_statuses": md_table(
                ["request", "status after this step"], [(f"`{rid}`", status) for rid, status in report.handled], "No requests."
            ),
            "failures": _failures_table(report.failed),
            **({} if report.considered else _nothing_waiting("verified_files")),
        }
    )


@dg.asset(
    partitions_def=tenants,
    deps=[verified_files],
    group_name="archive",
    owners=OWNERS,
    kinds={"s3"},
    tags={"domain": "archive"},
    retry_policy=RETRY,
    pool=S3_UPLOADS,
)
def glacier_objects(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    archive_store: ArchiveStoreResource,
    sources: SourcesResource,
    request_transport: RequestTransportResource,
) -> dg.MaterializeResult:
    """Verified files stored as S3 objects in the configured Glacier storage class, recorded in the catalog.

    Their requests are answered by the blocking check checksum_integrity, once S3 has been read back.
    """
    setup = archive_setup(catalog, archive_store, sources, request_transport)
    try:
        report = flow.store_waiting(setup, context.partition_key, root_run_id(context), run_finished(context))
    except faults.ArchiveFault as exc:
        raise step_fault(context, exc) from None
    return dg.MaterializeResult(
        metadata={
            "batch_ids": ", ".join(report.batches) or "none",
            "bucket": setup.for_tenant(context.partition_key).upload.bucket,  # the tenant's (GLACIER_TENANTS_CONFIG)
            "storage_class": setup.for_tenant(context.partition_key).upload.storage_class,
            "stored": report.stored,
            "deduplicated": report.deduplicated,
            "failed": len(report.failed),
            "bytes_stored": report.bytes,
            "aborted_stale_uploads": report.aborted_uploads,
            "swept_staged_files": report.swept_staged_files,
            "objects": md_table(
                ["request", "object", "bytes"], [(f"`{o['request']}`", o["url"], o["size"]) for o in report.objects], "No new objects."
            ),
            "failures": _failures_table(report.failed),
            **({} if report.considered else _nothing_waiting("glacier_objects")),
        }
    )
