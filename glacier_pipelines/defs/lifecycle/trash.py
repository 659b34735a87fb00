"""trash_purge: files whose trash grace period is over, deleted through the safe-deletion path (daily schedule)."""

from datetime import datetime, timezone

import dagster as dg

from glacier_pipelines.defs.archive.common import md_table
from glacier_pipelines.defs.status import schedule_status
from glacier_pipelines.flows import trash as flow
from glacier_pipelines.resources.archive import ArchiveStoreResource, CatalogResource
from glacier_pipelines.resources.lifecycle import LifecycleResource

OWNERS = ["team:archive"]
PURGE_LIMIT = 500  # files per run: bounded; the next tick takes the rest


@dg.asset(group_name="lifecycle", owners=OWNERS, kinds={"s3", "sql"}, tags={"domain": "lifecycle"})
def trash_purge(
    context: dg.AssetExecutionContext, catalog: CatalogResource, archive_store: ArchiveStoreResource, lifecycle: LifecycleResource
) -> dg.MaterializeResult:
    """Trashed files whose grace period (GLACIER_TRASH_GRACE_DAYS) is over, deleted as a deletion request would: bytes go with their
    last reference, package members are marked deleted, the early-deletion charge is recorded for the cost report."""
    setup = archive_store.trash_setup(catalog, pricing=lifecycle.pricing())
    report = flow.purge_due(setup, now=datetime.now(timezone.utc), limit=PURGE_LIMIT)
    for waiting in report.waiting[:20]:
        context.log.warning(f"trash purge waits: {waiting}")
    return dg.MaterializeResult(
        metadata={
            "purged": len(report.purged),
            "waiting": len(report.waiting),
            "objects_deleted": report.objects_deleted,
            "bytes_deleted": report.bytes_deleted,
            "early_deletion_usd": report.early_deletion_usd,
            "purged_requests": md_table(["request"], [(f"`{r}`",) for r in report.purged], "Nothing was due."),
            "waiting_requests": md_table(["request and why"], [(w,) for w in report.waiting], "Nothing waits."),
        }
    )


trash_purge_job = dg.define_asset_job(
    "trash_purge_job",
    selection=dg.AssetSelection.assets(trash_purge),
    description="Delete the trashed files whose grace period is over.",
    tags={"domain": "lifecycle"},
)


@dg.schedule(
    job=trash_purge_job,
    cron_schedule="11 3 * * *",
    execution_timezone="UTC",
    default_status=schedule_status("trash_purge_schedule"),
    description="Daily: delete the trashed files whose grace period is over.",
)
def trash_purge_schedule(context: dg.ScheduleEvaluationContext):
    stamp = (context.scheduled_execution_time or datetime.now(timezone.utc)).strftime("%Y%m%d")
    return dg.RunRequest(run_key=f"trash-purge:{stamp}")
