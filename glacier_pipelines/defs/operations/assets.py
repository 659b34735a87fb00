"""Operations assets, partitioned by tenant: bucket_reconciliation, restore_expiry, cost_report."""

import base64
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg

from glacier_pipelines.defs.archive.assets import glacier_objects
from glacier_pipelines.defs.archive.common import md_cell as _md_cell
from glacier_pipelines.defs.archive.packages import glacier_packages
from glacier_pipelines.defs.operations.checks import catalog_objects_present, catalog_objects_present_spec
from glacier_pipelines.defs.partitions import tenants
from glacier_pipelines.defs.restore.assets import restore_requests, restored_files
from glacier_pipelines.core.tenants import TenantsConfigError
from glacier_pipelines.flows import costs
from glacier_pipelines.flows import reconcile as reconcile_flow
from glacier_pipelines.flows import restore as restore_flow
from glacier_pipelines.resources.archive import ArchiveStoreResource, CatalogResource, RequestTransportResource
from glacier_pipelines.resources.restore import RestoreResource

OWNERS = ["team:archive"]
AS_OF_TAG = "glacier/as_of"


def _now(context: dg.AssetExecutionContext) -> datetime:
    """The time the run stands for: the schedule's tick (tag glacier/as_of, an ISO time with zone) or now."""
    tag = context.run.tags.get(AS_OF_TAG)
    return datetime.fromisoformat(tag) if tag else datetime.now(timezone.utc)


@dg.asset(
    partitions_def=tenants,
    deps=[glacier_objects, glacier_packages],
    group_name="operations",
    owners=OWNERS,
    kinds={"s3", "sql"},
    tags={"domain": "operations"},
    check_specs=[catalog_objects_present_spec("bucket_reconciliation")],
)
def bucket_reconciliation(
    context: dg.AssetExecutionContext, catalog: CatalogResource, archive_store: ArchiveStoreResource
) -> dg.MaterializeResult:
    """The tenant's catalog compared with its prefix in its bucket (GLACIER_TENANTS_CONFIG's placement, else the global one): objects missing from S3 (the check fails), objects no catalog
    row names (reported), and multipart uploads older than a day (aborted), so nothing is lost or paid for unseen."""
    try:
        tenants_config = archive_store.tenants()
    except TenantsConfigError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    report = reconcile_flow.reconcile_placed(
        catalog.get(), archive_store.client(), tenants_config, context.partition_key, now=_now(context)
    )
    if report.missing:
        context.log.error(
            f"{len(report.missing)} object(s) named by the catalog are missing from s3://{report.bucket}/{report.prefix}: "
            + ", ".join(report.missing[:10])
        )
    unnamed = "\n".join(f"| s3://{report.bucket}/{_md_cell(k)} | {size} |" for k, size in report.unnamed[:200])
    aborted = "\n".join(f"| {_md_cell(k)} | `{u}` |" for k, u in report.aborted_uploads[:200])
    return dg.MaterializeResult(
        metadata={
            "bucket": report.bucket,
            "prefix": report.prefix,
            "catalog_keys": report.catalog_keys,
            "bucket_keys": report.bucket_keys,
            "missing": len(report.missing),
            "unnamed": len(report.unnamed),
            "unnamed_bytes": sum(size for _, size in report.unnamed),
            "aborted_stale_uploads": len(report.aborted_uploads),
            "catalog_rows_elsewhere": report.elsewhere,
            "restored_copies": report.restored_copies,
            "ledger_objects": report.ledger_objects,
            "unnamed_objects": dg.MetadataValue.md(
                f"| object in S3 named by no catalog row | bytes |\n|---|---|\n{unnamed}"
                if unnamed
                else "Every object under the prefix is named by the catalog."
            ),
            "aborted_uploads": dg.MetadataValue.md(
                f"| key | upload id |\n|---|---|\n{aborted}" if aborted else "No stale multipart upload."
            ),
        },
        check_results=[catalog_objects_present(report)],
    )


@dg.asset(
    partitions_def=tenants,
    deps=[restored_files],
    group_name="operations",
    owners=OWNERS,
    kinds={"sql"},
    tags={"domain": "operations"},
)
def restore_expiry(
    context: dg.AssetExecutionContext, catalog: CatalogResource, archive_store: ArchiveStoreResource, restore: RestoreResource
) -> dg.MaterializeResult:
    """Restores whose copy and link have lapsed, marked EXPIRED with their link retired from the catalog; the STANDARD copies
    made for package members' links are deleted from the bucket."""
    setup = restore.setup(catalog, archive_store)
    counts = restore_flow.expire(setup, context.partition_key, _now(context))
    context.log.info(f"tenant {context.partition_key}: {counts}")
    return dg.MaterializeResult(metadata=dict(counts))


@dg.asset(
    partitions_def=tenants,
    deps=[glacier_objects, glacier_packages, restore_requests],
    group_name="operations",
    owners=OWNERS,
    kinds={"pandas", "matplotlib"},
    tags={"domain": "operations"},
)
def cost_report(
    context: dg.AssetExecutionContext, catalog: CatalogResource, restore: RestoreResource, request_transport: RequestTransportResource
) -> dg.MaterializeResult:
    """The tenant's archive cost per month by storage class and its estimated restore costs by tier, as a table and a chart;
    also written to $GLACIER_HOME/reports/costs/ so the figures outlive the run."""
    tenant, prices = context.partition_key, restore.pricing()
    table = costs.cost_table(catalog.get(), prices, tenant)
    png = costs.plot_png(table)
    folder = Path(request_transport.home) / "reports" / "costs"
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{tenant}-{_now(context):%Y%m%d}"
    stem.with_suffix(".png").write_bytes(png)
    table.to_csv(stem.with_suffix(".csv"), index=False)
    archive = table[table["kind"].str.startswith("archive")]
    restores = table[table["kind"].str.startswith("restore")]
    return dg.MaterializeResult(
        metadata={
            "archive_usd_per_month": round(float(archive["usd"].fillna(0).sum()), 6),
            "restore_estimated_usd": round(float(restores["usd"].fillna(0).sum()), 6),
            "objects": int(archive["objects"].sum()),
            "bytes": int(archive["bytes"].sum()),
            "restored_copy_bytes": int(table.loc[table["kind"].str.startswith("restored copies"), "bytes"].sum()),
            "pricing_version": prices.version if prices else "none",
            "costs": dg.MetadataValue.md(costs.markdown(table)),
            "cost_plot": dg.MetadataValue.md(f"![cost of {tenant}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"),
            "cost_plot_path": dg.MetadataValue.path(str(stem.with_suffix(".png"))),
            "cost_table_path": dg.MetadataValue.path(str(stem.with_suffix(".csv"))),
        }
    )
