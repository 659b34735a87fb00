"""Deletion, restoration and availability requests: answered from the catalog each tick (bounded work).

The intake sensors persist these requests; this sensor decides them. Deletions remove at most
``MAX_DELETIONS_PER_TICK`` files per tick (one DELETE each, a few ms); restorations are recorded
on the restore path, whose own sensor and ``restore_job`` start and deliver them; availability
questions are answered from the catalog alone. Answers go to the outbox, which the intake
sensors publish.
"""

import dagster as dg

from glacier_pipelines.core.tenants import load_tenants_config
from glacier_pipelines.defs.status import interval, sensor_status
from glacier_pipelines.flows import availability, deletion, restoration
from glacier_pipelines.resources.archive import ArchiveStoreResource, CatalogResource, pricing_or_none
from glacier_pipelines.resources.restore import RestoreResource

MAX_DELETIONS_PER_TICK = 200


@dg.sensor(
    minimum_interval_seconds=interval(30),
    default_status=sensor_status("worker_requests_sensor"),
    description="Answers deletion, restoration and availability requests recorded by the intake sensors: deletes "
    "unreferenced bytes (with the early-deletion charge), records restores and answers DELAYED, then SUCCESS "
    "with links or ERROR, and answers availability from the catalog.",
)
def worker_requests_sensor(
    context: dg.SensorEvaluationContext, catalog: CatalogResource, archive_store: ArchiveStoreResource, restore: RestoreResource
):
    tenants = load_tenants_config()  # GLACIER_TENANTS_CONFIG (each tenant's default restore tier and days): a broken file stops the tick
    cat = catalog.get()
    removed = deletion.process(
        deletion.DeletionSetup(
            catalog=cat,
            s3=archive_store.client(),
            bucket=archive_store.bucket,
            key_prefix=archive_store.key_prefix,
            pricing=pricing_or_none(restore.pricing_region),
            compact_share=lambda name: tenants.for_tenant(name).compact_deleted_share,
            tenants=tenants,
        ),
        limit=MAX_DELETIONS_PER_TICK,
    )
    setup = restore.setup(catalog, archive_store)
    restored = restoration.submit_pending(
        setup,
        max_days=restore.max_days,
        tenant_defaults=lambda name: (tenants.for_tenant(name).restore_tier, tenants.for_tenant(name).restore_days),
    )
    restoration.sync(setup, report=restored)
    asked = availability.answer_pending(cat)
    for waiting in removed.waiting[:20]:
        context.log.warning(f"deletion waits: {waiting}")
    summary = (
        f"deletions answered {removed.answered or 0}, {len(removed.waiting)} waiting, {removed.objects_deleted} object(s) "
        f"removed; restorations {restored.submitted} recorded, {restored.delayed} started, answered {restored.answered or 0}; "
        f"availability {asked} answered"
    )
    context.log.info(summary)
    return dg.SkipReason(summary)
