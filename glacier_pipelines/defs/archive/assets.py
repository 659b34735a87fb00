"""Archive path assets, partitioned by tenant: ingest_batch -> verified_files -> glacier_objects."""


import dagster as dg

from glacier_pipelines.defs.partitions import tenants
from glacier_pipelines.flows import archive as flow
from glacier_pipelines.resources.archive import (
    ArchiveStoreResource,
    CatalogResource,
    RequestTransportResource,
    SourcesResource,
    archive_setup,
)

OWNERS = ["team:archive"]
# Concurrency pools (limits per instance: `dagster instance concurrency set`, or concurrency.pools.default_limit).
S3_UPLOADS = "s3_uploads"
GLACIER_RESTORES = "glacier_restores"
RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def _root_run_id(context: dg.AssetExecutionContext) -> str:
    """Batches belong to the root run, so a re-execution continues the same batch."""
    return context.run.root_run_id or context.run.run_id


def _batch_id(context: dg.AssetExecutionContext, catalog: CatalogResource) -> str:
    batch_id = catalog.get().batch_for_run(_root_run_id(context))
    if batch_id is None:
        raise dg.Failure("no batch was claimed by this run: materialize ingest_batch first")
    return batch_id


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _failures_table(failed: list[tuple[str, str]]) -> dg.MetadataValue:
    if not failed:
        return dg.MetadataValue.md("No failures.")
    rows = "\n".join(f"| `{rid}` | {_md_cell(reason)} |" for rid, reason in failed[:200])
    more = f"\n\n…and {len(failed) - 200} more" if len(failed) > 200 else ""
    return dg.MetadataValue.md(f"| request | reason |\n|---|---|\n{rows}{more}")


@dg.asset(
    partitions_def=tenants,
    group_name="archive",
    owners=OWNERS,
    kinds={"python", "sql"},
    tags={"domain": "archive"},
)
def ingest_batch(context: dg.AssetExecutionContext, catalog: CatalogResource, request_transport: RequestTransportResource) -> dg.MaterializeResult:
    """The tenant's pending storage requests, claimed from the catalog into a durable batch (id, request ids, time)."""
    tenant = context.partition_key
    run_id = _root_run_id(context)

    def run_finished(owner: str) -> bool:
        run = context.instance.get_run_by_id(owner)
        return run is None or run.is_finished

    batch_id, count = flow.claim_batch(catalog.get(), tenant, run_id, request_transport.batch_size, run_finished)
    rows = catalog.get().batch_requests(batch_id)
    context.log.info(f"batch {batch_id}: {count} request(s) for tenant {tenant}")
    return dg.MaterializeResult(
        metadata={
            "batch_id": batch_id,
            "tenant": tenant,
            "requests": count,
            # A table an auditor can search from the UI: `glacier-pipelines audit REQUEST_ID` tells each request's story.
            "request_ids": dg.MetadataValue.md(
                "| request | batch | run |\n|---|---|---|\n" + "\n".join(f"| `{_md_cell(r.request_id)}` | `{batch_id}` | `{run_id}` |" for r in rows[:100])
                + (f"\n\n…and {len(rows) - 100} more" if len(rows) > 100 else "") if rows else "No requests."),
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
    """Each file of the batch fetched once, checksum-verified, measured (size, image width/height) and staged."""
    setup = archive_setup(catalog, archive_store, sources, request_transport)
    batch_id = _batch_id(context, catalog)
    report = flow.verify_batch(setup, batch_id, context.partition_key, _root_run_id(context))
    context.log.info(f"verified {report.verified}, deduplicated {report.deduplicated}, failed {len(report.failed)}")
    return dg.MaterializeResult(
        metadata={
            "batch_id": batch_id,
            "requested": report.considered,
            "verified": report.verified,
            "deduplicated": report.deduplicated,
            "failed": len(report.failed),
            "bytes_verified": report.bytes,
            "failures": _failures_table(report.failed),
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
    """Verified files stored as S3 objects in the configured Glacier storage class, recorded in the catalog."""
    setup = archive_setup(catalog, archive_store, sources, request_transport)
    batch_id = _batch_id(context, catalog)
    report = flow.store_batch(setup, batch_id, context.partition_key, _root_run_id(context))
    objects = report.objects[:100]
    table = "\n".join(f"| `{o['request']}` | {o['url']} | {o['size']} |" for o in objects)
    return dg.MaterializeResult(
        metadata={
            "batch_id": batch_id,
            "bucket": archive_store.bucket,
            "storage_class": archive_store.storage_class,
            "stored": report.stored,
            "deduplicated": report.deduplicated,
            "failed": len(report.failed),
            "bytes_stored": report.bytes,
            "aborted_stale_uploads": report.aborted_uploads,
            "swept_staged_files": report.swept_staged_files,
            "objects": dg.MetadataValue.md(f"| request | object | bytes |\n|---|---|---|\n{table}" if objects else "No new objects."),
            "failures": _failures_table(report.failed),
        }
    )
