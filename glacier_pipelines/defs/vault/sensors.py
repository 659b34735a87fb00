"""vault_jobs_sensor: polls pending Glacier jobs (DescribeJob, bounded per tick) and requests a vault_job run when work is ready."""

import json
from typing import cast

import dagster as dg

from glacier_pipelines.defs.status import interval, sensor_status, unset
from glacier_pipelines.defs.vault.assets import vault_job, vaults
from glacier_pipelines.flows import vault as flow
from glacier_pipelines.resources.archive import ArchiveStoreResource, CatalogResource
from glacier_pipelines.resources.vault import VaultResource

TICK_SECONDS = 30  # DescribeJob polling stops after this, well under the 60 s a tick may take


@dg.sensor(
    job=vault_job,
    minimum_interval_seconds=interval(300),
    default_status=sensor_status("vault_jobs_sensor", unset("GLACIER_BUCKET")),
    description="Polls pending inventory and archive-retrieval jobs with DescribeJob (bounded per tick, least recently "
    "checked first), records what completed, and requests one vault_job run per vault with ready work.",
)
def vault_jobs_sensor(
    context: dg.SensorEvaluationContext, vault: VaultResource, catalog: CatalogResource, archive_store: ArchiveStoreResource
) -> dg.SensorResult:
    setup = vault.setup(catalog, archive_store)
    cursor = json.loads(context.cursor) if context.cursor else {}
    changes = flow.refresh_jobs(setup, limit=vault.max_jobs_per_tick, max_seconds=TICK_SECONDS)
    cursor["described"] = cursor.get("described", 0) + changes.checked
    cursor["ready"] = cursor.get("ready", 0) + len(changes.succeeded)
    cursor["failed_or_expired"] = cursor.get("failed_or_expired", 0) + len(changes.failed) + len(changes.expired)
    context.log.info(
        f"described {changes.checked} pending job(s): {len(changes.succeeded)} ready, "
        f"{len(changes.failed)} failed, {len(changes.expired)} expired"
    )
    plans = flow.plan_runs(setup)
    missing = [name for name in plans if not context.instance.has_dynamic_partition(cast(str, vaults.name), name)]
    run_requests = [
        dg.RunRequest(partition_key=name, run_key=f"vault:{name}:{key}", tags={"glacier/vault": name})
        for name, key in sorted(plans.items())
    ]
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[vaults.build_add_request(missing)] if missing else None,
        cursor=json.dumps(cursor, sort_keys=True),
    )
