"""package_compaction: the tenant's mostly-deleted packages repacked (restored first when archived), daily per tenant."""

from datetime import datetime, timezone
from typing import cast

import dagster as dg

from glacier_pipelines.core import faults
from glacier_pipelines.defs.archive.common import md_table, root_run_id, step_fault
from glacier_pipelines.defs.partitions import tenants
from glacier_pipelines.defs.status import schedule_status
from glacier_pipelines.flows import compaction as flow
from glacier_pipelines.resources.archive import (
    ArchiveStoreResource,
    CatalogResource,
    RequestTransportResource,
    SourcesResource,
    archive_setup,
)
from glacier_pipelines.resources.lifecycle import LifecycleResource

OWNERS = ["team:archive"]


@dg.asset(partitions_def=tenants, group_name="lifecycle", owners=OWNERS, kinds={"s3", "tar"}, tags={"domain": "lifecycle"})
def package_compaction(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    archive_store: ArchiveStoreResource,
    sources: SourcesResource,
    request_transport: RequestTransportResource,
    lifecycle: LifecycleResource,
) -> dg.MaterializeResult:
    """The tenant's packages whose deleted members reach compact_deleted_share of their bytes, repacked: archive-class packages
    are restored first (read once x-amz-restore says the copy is ready), the live members go into a new package, their old
    storedFileUrls stay answerable through aliases, and the old package is deleted with its early-deletion charge recorded."""
    setup = flow.CompactionSetup(
        archive=archive_setup(catalog, archive_store, sources, request_transport),
        deletion=archive_store.deletion_setup(catalog, lifecycle.pricing()),
    )
    try:
        report = flow.compact(setup, context.partition_key, run_id=root_run_id(context), now=datetime.now(timezone.utc))
    except faults.ArchiveFault as exc:
        raise step_fault(context, exc) from None
    return dg.MaterializeResult(
        metadata={
            "due": report.due,
            "compacted": len(report.compacted),
            "restores_requested": len(report.restores_requested),
            "waiting": len(report.waiting),
            "failed": len(report.failed),
            "early_deletion_usd": report.early_deletion_usd,
            "packages": md_table(
                ["old package", "new package", "live members", "bytes before", "bytes after", "early deletion USD"],
                [
                    (c["oldUrl"], c["newUrl"], c["liveMembers"], c["bytesBefore"], c["bytesAfter"], c["earlyDeletionChargeUsd"])
                    for c in report.compacted
                ],
                "No package was repacked.",
            ),
            "waiting_packages": md_table(["package and why"], [(w,) for w in report.waiting], "Nothing waits."),
            "failures": md_table(["package", "reason"], report.failed, "No failures."),
        }
    )


package_compaction_job = dg.define_asset_job(
    "package_compaction_job",
    selection=dg.AssetSelection.assets(package_compaction),
    description="Repack one tenant's mostly-deleted packages.",
    tags={"domain": "lifecycle"},
)


@dg.schedule(
    job=package_compaction_job,
    cron_schedule="37 4 * * *",
    execution_timezone="UTC",
    default_status=schedule_status("package_compaction_schedule"),
    description="Daily: one package_compaction run per tenant (a package waiting for its restore is read on a later day).",
)
def package_compaction_schedule(context: dg.ScheduleEvaluationContext):
    names = sorted(context.instance.get_dynamic_partitions(cast(str, tenants.name)))
    if not names:
        return dg.SkipReason("no tenant yet")
    stamp = (context.scheduled_execution_time or datetime.now(timezone.utc)).strftime("%Y%m%d")
    return [dg.RunRequest(partition_key=name, run_key=f"compaction:{name}:{stamp}", tags={"glacier/tenant": name}) for name in names]
