"""glacier_packages: small files packed into tar objects; package_integrity; the hourly close of aged packages."""

import dagster as dg

from glacier_pipelines.catalog.packages import PackageStore
from glacier_pipelines.core import faults
from glacier_pipelines.defs.archive.assets import verified_files
from glacier_pipelines.defs.archive.common import OWNERS, S3_UPLOADS, md_table, root_run_id, run_finished, step_fault
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
def glacier_packages(
    context: dg.AssetExecutionContext,
    config: PackagesConfig,
    catalog: CatalogResource,
    archive_store: ArchiveStoreResource,
    sources: SourcesResource,
    request_transport: RequestTransportResource,
) -> dg.MaterializeResult:
    """Small verified files packed into uncompressed tar packages (one Glacier object each) with a manifest beside each.

    Members answer DELAYED when they join the open package; package_integrity answers them once the stored package is read back.
    """
    setup = archive_setup(catalog, archive_store, sources, request_transport)
    tenant, run_id = context.partition_key, root_run_id(context)
    added = flow.add_waiting_members(setup, tenant, run_id, run_finished(context))
    try:
        report = flow.close_due(setup, setup.packaging, tenant, run_id, close_all=config.close_all, run_finished=run_finished(context))
    except faults.ArchiveFault as exc:  # the tenant's bucket is missing or unreachable: the packages stay open, members staged
        raise step_fault(context, exc) from None
    open_now = PackageStore(setup.catalog).open_packages(tenant)
    return dg.MaterializeResult(
        metadata={
            "members_added": added,
            "packages_stored": report.closed,
            "members_stored": report.members_stored,
            "bytes_stored": report.bytes_stored,
            "open_packages": len(open_now),
            "open_member_bytes": sum(p["member_bytes"] for p in open_now),
            "failed": len(report.failed),
            "packages": md_table(
                ["package", "members", "bytes"], [(p["url"], p["members"], p["bytes"]) for p in report.packages], "No package stored."
            ),
            "failures": md_table(["item", "reason"], [(f"`{k}`", v) for k, v in report.failed], "No failures."),
            **(
                {}
                if added or report.closed or report.failed
                else {
                    "nothing_waiting": True,
                    "note": "nothing was waiting for glacier_packages in this partition (no verified small file, no due package)",
                }
            ),
        }
    )


@dg.asset_check(
    asset=glacier_packages,
    blocking=True,
    description="Reads back each stored package whose members wait: S3's checksum, size and class of the package object "
    "against those computed when it was built, and its manifest against the members' recorded offsets, "
    "lengths and SHA-256. Members are answered SUCCESS only then; a package with problems is flagged and "
    "its members answered ERROR.",
)
def package_integrity(
    context: dg.AssetCheckExecutionContext,
    catalog: CatalogResource,
    archive_store: ArchiveStoreResource,
    sources: SourcesResource,
    request_transport: RequestTransportResource,
) -> dg.AssetCheckResult:
    setup = archive_setup(catalog, archive_store, sources, request_transport)
    try:
        report = flow.check_packages(setup, context.partition_key if context.has_partition_key else None)
    except faults.ArchiveFault as exc:
        raise step_fault(context, exc) from None
    return dg.AssetCheckResult(
        passed=not report.problems,
        metadata={
            "packages_checked": report.packages_checked,
            "members_checked": report.members_checked,
            "packages_with_problems": len(report.problems),
            "answered_success": report.answered["SUCCESS"],
            "answered_error": report.answered["ERROR"],
            "problems": md_table(
                ["package", "problems"], [(u, "; ".join(p)) for u, p in report.problems], "All members reproduce their checksums."
            ),
            "requests": md_table(
                ["request", "package", "answer"], [(f"`{r}`", u, a) for r, u, a in report.requests], "No member was waiting for this check."
            ),
        },
    )


package_job = dg.define_asset_job(
    "package_job",
    selection=dg.AssetSelection.assets(glacier_packages),
    description="Close and upload the tenant's due packages (aged or full; all with close_all).",
)


@dg.schedule(
    job=package_job,
    cron_schedule="17 * * * *",
    default_status=schedule_status("package_close_schedule", unset("GLACIER_BUCKET")),
    description="Hourly: one package_job run per tenant with an open package past its maximum age.",
)
def package_close_schedule(
    context: dg.ScheduleEvaluationContext,
    catalog: CatalogResource,
    archive_store: ArchiveStoreResource,
    sources: SourcesResource,
    request_transport: RequestTransportResource,
):
    setup = archive_setup(catalog, archive_store, sources, request_transport)
    due = flow.due_packages(setup, setup.packaging, None, close_all=False, run_finished=run_finished(context))  # not one a live run closes
    tenants_due = sorted({p["tenant"] for p in due})
    if not tenants_due:
        return dg.SkipReason("no open package has reached its size or age")
    hour = context.scheduled_execution_time.strftime("%Y%m%dT%H")
    return [dg.RunRequest(partition_key=t, run_key=f"packages:{t}:{hour}", tags={"glacier/tenant": t}) for t in tenants_due]
