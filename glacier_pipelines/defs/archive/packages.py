"""glacier_packages: small files packed into tar objects; package_integrity; the hourly close of aged packages."""

import dagster as dg

from glacier_pipelines.catalog.packages import PackageStore
from glacier_pipelines.defs.archive.assets import OWNERS, S3_UPLOADS, _md_cell, _root_run_id, verified_files
from glacier_pipelines.defs.partitions import tenants
from glacier_pipelines.defs.status import schedule_status, unset
from glacier_pipelines.flows import packaging as flow
from glacier_pipelines.resources.archive import (
    ArchiveStoreResource,
    CatalogResource,
    RequestTransportResource,
    SourcesResource,
    archive_setup,
)


class PackagesConfig(dg.Config):
    close_all: bool = False  # close every open package of the tenant now, whatever its size or age


@dg.asset(
    partitions_def=tenants,
    deps=[verified_files],
    group_name="archive",
    owners=OWNERS,
    kinds={"s3", "tar"},
    tags={"domain": "archive"},
    pool=S3_UPLOADS,
)
def glacier_packages(context: dg.AssetExecutionContext, config: PackagesConfig, catalog: CatalogResource, archive_store: ArchiveStoreResource,
                     sources: SourcesResource, request_transport: RequestTransportResource) -> dg.MaterializeResult:
    """Small verified files packed into uncompressed tar packages (one Glacier object each) with a manifest beside each."""
    setup = archive_setup(catalog, archive_store, sources, request_transport)
    tenant, run_id = context.partition_key, _root_run_id(context)
    batch_id = setup.catalog.batch_for_run(run_id)
    added = flow.add_verified_members(setup, batch_id, tenant, run_id) if batch_id else 0
    report = flow.close_due(setup, setup.packaging, tenant, run_id, close_all=config.close_all)
    open_now = PackageStore(setup.catalog).open_packages(tenant)
    rows = "\n".join(f"| {p['url']} | {p['members']} | {p['bytes']} |" for p in report.packages[:100])
    failures = "\n".join(f"| `{k}` | {_md_cell(v)} |" for k, v in report.failed[:100])
    return dg.MaterializeResult(metadata={
        "members_added": added,
        "packages_stored": report.closed,
        "members_stored": report.members_stored,
        "bytes_stored": report.bytes_stored,
        "open_packages": len(open_now),
        "open_member_bytes": sum(p["member_bytes"] for p in open_now),
        "failed": len(report.failed),
        "packages": dg.MetadataValue.md(f"| package | members | bytes |\n|---|---|---|\n{rows}" if rows else "No package stored."),
        "failures": dg.MetadataValue.md(f"| item | reason |\n|---|---|\n{failures}" if failures else "No failures."),
    })


@dg.asset_check(asset=glacier_packages, blocking=True,
                description="Every member's recorded offset and length reproduce its SHA-256 from the package bytes (checked on the built "
                            "package before upload, since Glacier classes are not readable afterwards).")
def package_integrity(context: dg.AssetCheckExecutionContext, catalog: CatalogResource) -> dg.AssetCheckResult:
    stored = PackageStore(catalog.get()).package_problems(_root_run_id(context))  # type: ignore[arg-type]
    bad = [(url, problems) for url, problems, _ in stored if problems]
    return dg.AssetCheckResult(passed=not bad, metadata={
        "packages_checked": len(stored), "members_checked": sum(n for _, _, n in stored), "packages_with_problems": len(bad),
        "problems": dg.MetadataValue.md("\n".join(f"- {u}: {'; '.join(p)}" for u, p in bad) or "All members reproduce their checksums."),
    })


package_job = dg.define_asset_job("package_job", selection=dg.AssetSelection.assets(glacier_packages),
                                  description="Close and upload the tenant's due packages (aged or full; all with close_all).")


@dg.schedule(job=package_job, cron_schedule="17 * * * *", default_status=schedule_status("package_close_schedule", unset("GLACIER_BUCKET")),
             description="Hourly: one package_job run per tenant with an open package past its maximum age.")
def package_close_schedule(context: dg.ScheduleEvaluationContext, catalog: CatalogResource, archive_store: ArchiveStoreResource,
                           sources: SourcesResource, request_transport: RequestTransportResource):
    setup = archive_setup(catalog, archive_store, sources, request_transport)
    due = flow.due_packages(setup, setup.packaging, None, close_all=False)
    tenants_due = sorted({p["tenant"] for p in due})
    if not tenants_due:
        return dg.SkipReason("no open package has reached its size or age")
    hour = context.scheduled_execution_time.strftime("%Y%m%dT%H")
    return [dg.RunRequest(partition_key=t, run_key=f"packages:{t}:{hour}", tags={"glacier/tenant": t}) for t in tenants_due]
