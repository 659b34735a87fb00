"""restore_completed_sensor: notices finished restores (SQS events, or polling) and requests delivery runs."""

import hashlib
import json

import dagster as dg

from glacier_pipelines.defs.restore.jobs import restore_job
from glacier_pipelines.defs.status import interval, sensor_status, unset
from glacier_pipelines.flows import restore as flow
from glacier_pipelines.flows.restore_events import drain_events
from glacier_pipelines.resources.archive import ArchiveStoreResource, CatalogResource
from glacier_pipelines.resources.restore import RestoreResource


def plan_restore_runs(setup: flow.RestoreSetup) -> list[dg.RunRequest]:
    """One run per tenant with restore work, keyed by that work so a repeated tick adds nothing."""
    store = setup.store
    out = []
    for tenant in store.tenants_with_work():
        ids = [str(r["id"]) for r in store.rows(tenant=tenant, statuses=["PENDING", "IN_PROGRESS"])]
        marker = hashlib.sha256(",".join(ids).encode()).hexdigest()[:16]
        restored = sorted(
            str(r["object_id"])
            for r in store.rows(tenant=tenant, statuses=["IN_PROGRESS"])
            if (s := store.object_state(r["object_id"])) and s["state"] in ("RESTORED", "FAILED")
        )
        run_key = f"restore:{tenant}:{marker}:{hashlib.sha256(','.join(restored).encode()).hexdigest()[:16]}"
        out.append(dg.RunRequest(partition_key=tenant, run_key=run_key, tags={"glacier/tenant": tenant}))
    return out


@dg.sensor(
    job=restore_job,
    minimum_interval_seconds=interval(60),
    default_status=sensor_status("restore_completed_sensor", unset("GLACIER_BUCKET")),
    description="Reads S3/EventBridge restore events from SQS (or polls x-amz-restore where no queue is configured), "
    "records completions in the catalog, then requests one restore_job run per tenant with work.",
)
def restore_completed_sensor(
    context: dg.SensorEvaluationContext, catalog: CatalogResource, archive_store: ArchiveStoreResource, restore: RestoreResource
) -> dg.SensorResult:
    setup = restore.setup(catalog, archive_store)
    cursor = json.loads(context.cursor) if context.cursor else {}
    if restore.events_queue_url:
        seen = drain_events(setup, restore.sqs(), restore.events_queue_url, max_messages=500, max_seconds=20)
        cursor["events"] = cursor.get("events", 0) + seen.events
        cursor["unknown"] = cursor.get("unknown", 0) + seen.unknown
        context.log.info(f"restore events: {seen.events} applied, {seen.unknown} for unknown objects, {seen.ignored} ignored")
    else:
        checked, completed = flow.poll(setup, limit=200)
        cursor["polled"] = cursor.get("polled", 0) + checked
        context.log.info(f"no GLACIER_RESTORE_EVENTS_QUEUE_URL: polled {checked} object(s), {completed} restored")
    return dg.SensorResult(run_requests=plan_restore_runs(setup), cursor=json.dumps(cursor))
