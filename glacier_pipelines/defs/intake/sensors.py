"""request_intake_sensor: requests from the transport into the catalog, then one run per tenant with work."""


import json
import socket

import dagster as dg

from glacier_pipelines.defs.archive.jobs import archive_job
from glacier_pipelines.defs.partitions import tenants
from glacier_pipelines.flows import intake
from glacier_pipelines.resources.archive import CatalogResource, RequestTransportResource
from glacier_pipelines.settings import env

WORKER_ID = f"glacier-pipelines@{socket.gethostname()}"


def plan_runs(catalog, known_partitions: set[str], run_finished) -> tuple[list[dg.RunRequest], list[str]]:
    """One run request per tenant with pending work (or abandoned batches), keyed so a repeat is harmless."""
    requests, new_partitions = [], []
    for tenant in catalog.tenants_with_work():
        if not tenant:
            continue
        marker = catalog.pending_marker(tenant)
        abandoned = sorted(b for b, owner in catalog.batch_runs_in_flight(tenant).items() if run_finished(owner))
        if marker is None and not abandoned:
            continue
        if tenant not in known_partitions:
            new_partitions.append(tenant)
        run_key = f"{tenant}:{marker}:{','.join(abandoned)}"
        requests.append(dg.RunRequest(partition_key=tenant, run_key=run_key, tags={"glacier/tenant": tenant}))
    return requests, new_partitions


@dg.sensor(
    job=archive_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING if env("GLACIER_SENSORS_RUNNING") == "1" else dg.DefaultSensorStatus.STOPPED,
    description="Drains the request transport into the catalog (bounded per tick), publishes queued responses, and requests one archive_job run per tenant with work.",
)
def request_intake_sensor(context: dg.SensorEvaluationContext, catalog: CatalogResource, request_transport: RequestTransportResource) -> dg.SensorResult:
    cat = catalog.get()
    transport = request_transport.transport()
    result = intake.drain_requests(transport, cat, max_messages=2000, max_seconds=20, allowed_tenants=request_transport.allowed_tenants())
    published = intake.publish_responses(transport, cat, worker_id=WORKER_ID)

    def run_finished(owner: str) -> bool:
        run = context.instance.get_run_by_id(owner)
        return run is None or run.is_finished

    known = set(context.instance.get_dynamic_partitions(tenants.name))
    run_requests, new_partitions = plan_runs(cat, known, run_finished)
    cursor = json.loads(context.cursor) if context.cursor else {"received": 0, "published": 0}
    cursor = {"received": cursor.get("received", 0) + result.received, "published": cursor.get("published", 0) + published}
    context.log.info(f"intake: {result.new} new, {result.duplicates} duplicate, {result.invalid} invalid; {published} responses published")
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[tenants.build_add_request(new_partitions)] if new_partitions else [],
        cursor=json.dumps(cursor),
    )
