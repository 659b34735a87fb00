"""Archive runs in the Dagster instance: the one planner's runs, as sensors and ``glacier-pipelines process`` start them.

flows/planning.py decides from the catalog which runs a tenant needs. Here that plan meets the
instance, the same way for every caller:

- whether the run owning a batch is over (then its batch is adopted; a run that Dagster's
  ``run_retries`` is about to run again is not over: its retry continues the batch), and how
  many runs of a tenant are busy (against GLACIER_TENANT_RUNS);
- a planned run carries its plan key in the tag ``glacier/plan-key``. A plan already queued or
  running (a sensor's run, a run the CLI submitted or is executing) is not planned again, so the
  sensors and the CLI never both start a run for the same batch;
- a plan whose runs all ended while the catalog stayed as it was (a run that failed or whose
  worker died before it claimed anything) is tried again under a new run key (``KEY#2``). A
  sensor starts at most ``MAX_ATTEMPTS`` runs of one state, then waits until the catalog
  changes; ``process`` tries again on every pass.

Two planners looking at the same moment can still both start one run: the catalog's atomic
claims then give the batch to one of them, and the other finds nothing waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import PARENT_RUN_ID_TAG, ROOT_RUN_ID_TAG, WILL_RETRY_TAG

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.flows.planning import plan_archive_runs

ARCHIVE_JOB = "archive_job"
PLAN_KEY_TAG = "glacier/plan-key"
MAX_ATTEMPTS = 3
BUSY = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@dataclass(frozen=True)
class ArchiveRun:
    """One archive run to start: its tenant (the partition), its Dagster run key and the tags every planner gives it."""

    tenant: str
    run_key: str
    plan_key: str
    slot: int
    tags: dict[str, str] = field(default_factory=dict)

    def all_tags(self) -> dict[str, str]:
        """The tags of a run started outside a sensor: what the sensor daemon adds to a RunRequest's, spelled out."""
        return {**self.tags, "dagster/partition": self.tenant, "dagster/run_key": self.run_key}


def awaiting_retry(instance: dg.DagsterInstance, run: DagsterRun) -> bool:
    """A failed run that Dagster's run_retries will run again (``dagster/will_retry``), whose retry does not exist yet."""
    if run.status != dg.DagsterRunStatus.FAILURE or run.tags.get(WILL_RETRY_TAG) != "true":
        return False
    return not instance.get_runs(filters=dg.RunsFilter(tags={PARENT_RUN_ID_TAG: run.run_id}), limit=1)


def run_finished(instance: dg.DagsterInstance) -> Callable[[str], bool]:
    """Whether the run owning some work is over (or unknown to this instance), so that a new run may take it over.

    Work belongs to a root run (its retries continue it): the owner is over once its newest retry or
    re-execution ended and Dagster will not retry that one.
    """

    def finished(owner: str) -> bool:
        newest = instance.get_runs(filters=dg.RunsFilter(tags={ROOT_RUN_ID_TAG: owner}), limit=1) or [
            run for run in [instance.get_run_by_id(owner)] if run is not None
        ]
        return not newest or (newest[0].is_finished and not awaiting_retry(instance, newest[0]))

    return finished


def runs_in_progress(instance: dg.DagsterInstance) -> Callable[[str], int]:
    """How many archive runs of a tenant are queued or running (counted against its GLACIER_TENANT_RUNS)."""

    def count(tenant: str) -> int:
        return instance.get_runs_count(dg.RunsFilter(job_name=ARCHIVE_JOB, statuses=BUSY, tags={"dagster/partition": tenant}))

    return count


def planned_runs(
    instance: dg.DagsterInstance,
    catalog: Catalog,
    *,
    batch_size: int,
    concurrency: str = "1",
    tenant: str | None = None,
    max_attempts: int | None = MAX_ATTEMPTS,
) -> list[ArchiveRun]:
    """The archive runs to start now (all tenants, or one), minus plans already queued or running, or used up.

    ``max_attempts`` bounds the runs of one unchanged state for callers that plan on their own (the sensors,
    every 30 s); ``process``, started by someone asking for another try, passes None.
    """
    plans = plan_archive_runs(
        catalog, run_finished(instance), batch_size=batch_size, concurrency=concurrency, runs_in_progress=runs_in_progress(instance)
    )
    out = []
    for plan in plans:
        if tenant is not None and plan.tenant != tenant:
            continue
        earlier = instance.get_runs(filters=dg.RunsFilter(job_name=ARCHIVE_JOB, tags={PLAN_KEY_TAG: plan.run_key}))
        if any(not run.is_finished or awaiting_retry(instance, run) for run in earlier) or (
            max_attempts is not None and len(earlier) >= max_attempts
        ):
            continue
        run_key = plan.run_key if not earlier else f"{plan.run_key}#{len(earlier) + 1}"
        out.append(
            ArchiveRun(
                plan.tenant,
                run_key,
                plan.run_key,
                plan.slot,
                {"glacier/tenant": plan.tenant, "glacier/slot": str(plan.slot), PLAN_KEY_TAG: plan.run_key},
            )
        )
    return out


def run_requests(runs: list[ArchiveRun]) -> list[dg.RunRequest]:
    """The sensors' form of the same runs."""
    return [dg.RunRequest(partition_key=r.tenant, run_key=r.run_key, tags=r.tags) for r in runs]
