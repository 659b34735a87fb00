"""The operations schedules: daily reconciliation and cost report for every tenant, hourly restore expiry where due."""

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import cast

import dagster as dg

from glacier_pipelines.catalog.restores import RestoreStore
from glacier_pipelines.defs.operations.assets import AS_OF_TAG, bucket_reconciliation, cost_report, restore_expiry
from glacier_pipelines.defs.partitions import tenants
from glacier_pipelines.defs.status import schedule_status
from glacier_pipelines.flows.restore import expiry_due
from glacier_pipelines.resources.archive import CatalogResource

TENANTS = cast(str, tenants.name)  # a DynamicPartitionsDefinition built with a name always has one

reconciliation_job = dg.define_asset_job(
    "reconciliation_job",
    selection=dg.AssetSelection.assets(bucket_reconciliation),
    description="Compare one tenant's catalog with its bucket prefix; abort stale multipart uploads.",
)
restore_expiry_job = dg.define_asset_job(
    "restore_expiry_job",
    selection=dg.AssetSelection.assets(restore_expiry),
    description="Mark one tenant's lapsed restores EXPIRED and retire their links.",
)
cost_report_job = dg.define_asset_job(
    "cost_report_job",
    selection=dg.AssetSelection.assets(cost_report),
    description="Materialize one tenant's cost report (table and chart).",
)


def _tick(context: dg.ScheduleEvaluationContext) -> datetime:
    return context.scheduled_execution_time or datetime.now(timezone.utc)


def _per_tenant(context: dg.ScheduleEvaluationContext, kind: str, names: Sequence[str]) -> list[dg.RunRequest] | dg.SkipReason:
    """One run per tenant, keyed by the tick so a tick is launched once and the next tick launches again."""
    if not names:
        return dg.SkipReason(f"{kind}: no tenant to run")
    tick = _tick(context)
    stamp = tick.strftime("%Y%m%dT%H%M")
    return [
        dg.RunRequest(partition_key=t, run_key=f"{kind}:{t}:{stamp}", tags={"glacier/tenant": t, AS_OF_TAG: tick.isoformat()})
        for t in sorted(names)
    ]


@dg.schedule(
    job=reconciliation_job,
    cron_schedule="23 2 * * *",
    execution_timezone="UTC",
    default_status=schedule_status("reconciliation_schedule"),
    description="Daily: one bucket_reconciliation run per tenant (missing objects fail catalog_objects_present).",
)
def reconciliation_schedule(context: dg.ScheduleEvaluationContext):
    return _per_tenant(context, "reconcile", context.instance.get_dynamic_partitions(TENANTS))


@dg.schedule(
    job=restore_expiry_job,
    cron_schedule="41 * * * *",
    execution_timezone="UTC",
    default_status=schedule_status("restore_expiry_schedule"),
    description="Hourly: one restore_expiry run per tenant that has a lapsed link or restored copy.",
)
def restore_expiry_schedule(context: dg.ScheduleEvaluationContext, catalog: CatalogResource):
    store, now = RestoreStore(catalog.get()), _tick(context)
    names = [t for t in context.instance.get_dynamic_partitions(TENANTS) if expiry_due(store, t, now)]
    return _per_tenant(context, "restore-expiry", names)


@dg.schedule(
    job=cost_report_job,
    cron_schedule="53 5 * * *",
    execution_timezone="UTC",
    default_status=schedule_status("cost_report_schedule"),
    description="Daily: one cost_report run per tenant.",
)
def cost_report_schedule(context: dg.ScheduleEvaluationContext):
    return _per_tenant(context, "cost-report", context.instance.get_dynamic_partitions(TENANTS))
