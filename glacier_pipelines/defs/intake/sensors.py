"""Intake sensors: requests from a transport into the catalog, then one run per tenant with work.

``request_intake_sensor`` drains the embedded spool, ``amqp_bridge_sensor`` a RabbitMQ queue.
Each runs only when ``GLACIER_REQUEST_TRANSPORT`` selects its transport and skips with the
reason otherwise, so the two never drain at once.
"""

import json
import socket
from typing import cast

import dagster as dg

from glacier_pipelines.core.transport import TransportError
from glacier_pipelines.defs.archive.jobs import archive_job
from glacier_pipelines.defs.intake.run_workers import fail_runs_of_gone_workers
from glacier_pipelines.defs.intake.runs import planned_runs, run_requests
from glacier_pipelines.defs.partitions import tenants
from glacier_pipelines.defs.status import interval, sensor_status, transport_is, unset
from glacier_pipelines.flows import intake
from glacier_pipelines.flows.restore_intake import drain_restore_requests
from glacier_pipelines.resources.archive import ArchiveStoreResource, CatalogResource, RequestTransportResource
from glacier_pipelines.resources.restore import RestoreResource

WORKER_ID = f"glacier-pipelines@{socket.gethostname()}"
MAX_MESSAGES_PER_TICK = 5000
MAX_SECONDS_PER_TICK = 20.0


def plan_runs(
    instance: dg.DagsterInstance, catalog, known_partitions: set[str], *, batch_size: int = 500, concurrency: str = "1"
) -> tuple[list[dg.RunRequest], list[str]]:
    """Run requests from the one archive planner (defs/intake/runs.py), and the tenants to add as partitions first."""
    runs = planned_runs(instance, catalog, batch_size=batch_size, concurrency=concurrency)
    return run_requests(runs), sorted({r.tenant for r in runs} - known_partitions)


def intake_tick(
    context: dg.SensorEvaluationContext,
    catalog: CatalogResource,
    request_transport: RequestTransportResource,
    kind: str,
    restore_intake=None,
) -> dg.SensorResult | dg.SkipReason:
    if request_transport.kind != kind:
        return dg.SkipReason(f"GLACIER_REQUEST_TRANSPORT is {request_transport.kind!r}, not {kind!r}: this sensor has nothing to read")
    cat = catalog.get()
    result, published, problems = intake.IntakeResult(), 0, []
    try:
        with request_transport.transport() as transport:
            result = intake.drain_requests(
                transport,
                cat,
                max_messages=MAX_MESSAGES_PER_TICK,
                max_seconds=MAX_SECONDS_PER_TICK,
                allowed_tenants=request_transport.allowed_tenants(),
            )
            published = intake.publish_responses(transport, cat, worker_id=WORKER_ID)
            if restore_intake is not None:
                restores = restore_intake(transport)
                if restores.accepted or restores.invalid:
                    context.log.info(f"restore requests: {restores.accepted} recorded, {len(restores.invalid)} invalid")
    except TransportError as exc:  # the broker is down: still start runs for work already persisted
        problems.append(str(exc))
    if result.transport_error:
        problems.append(result.transport_error)
    for problem in problems:
        context.log.warning(f"transport: {problem}")

    for run_id in fail_runs_of_gone_workers(context.instance):  # runs a killed `glacier-pipelines process` left behind here
        context.log.warning(f"run {run_id}: its glacier-pipelines process is gone; marked failed, its batch is taken over")
    known = set(context.instance.get_dynamic_partitions(cast(str, tenants.name)))
    requests, new_partitions = plan_runs(
        context.instance, cat, known, batch_size=request_transport.batch_size, concurrency=request_transport.tenant_runs
    )
    cursor = json.loads(context.cursor) if context.cursor else {}
    cursor = {"received": cursor.get("received", 0) + result.received, "published": cursor.get("published", 0) + published}
    context.log.info(
        f"intake: {result.new} new, {result.duplicates} duplicate, {result.invalid} invalid; "
        f"{published} response(s) published; {len(requests)} run request(s)"
    )
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[tenants.build_add_request(new_partitions)] if new_partitions else [],
        cursor=json.dumps(cursor),
    )


@dg.sensor(
    job=archive_job,
    minimum_interval_seconds=interval(30),
    default_status=sensor_status("request_intake_sensor", transport_is("embedded")),
    description="Drains the embedded request spool into the catalog (bounded per tick), publishes queued responses, "
    "and requests one archive_job run per tenant with work.",
)
def request_intake_sensor(context: dg.SensorEvaluationContext, catalog: CatalogResource, request_transport: RequestTransportResource):
    return intake_tick(context, catalog, request_transport, "embedded")


@dg.sensor(
    job=archive_job,
    minimum_interval_seconds=interval(30),
    default_status=sensor_status("amqp_bridge_sensor", transport_is("amqp") or unset("GLACIER_AMQP_URL")),
    description="Drains the AMQP request queue into the catalog (persist, then acknowledge; invalid messages to the "
    "dead-letter queue), publishes queued responses with confirms, records restore requests from "
    "GLACIER_RESTORE_REQUEST_QUEUE, and requests one archive_job run per tenant.",
)
def amqp_bridge_sensor(
    context: dg.SensorEvaluationContext,
    catalog: CatalogResource,
    request_transport: RequestTransportResource,
    archive_store: ArchiveStoreResource,
    restore: RestoreResource,
):
    restore_intake = None
    if request_transport.restore_request_queue:

        def restore_intake(transport):
            return drain_restore_requests(
                transport, request_transport.restore_request_queue, restore.setup(catalog, archive_store), max_days=restore.max_days
            )

    return intake_tick(context, catalog, request_transport, "amqp", restore_intake)
