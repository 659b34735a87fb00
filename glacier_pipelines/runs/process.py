"""One pass through Dagster (``glacier-pipelines process``, the demo), planned like the sensors' runs, executed here or queued.

The archive runs come from the one planner (defs/intake/runs.py over flows/planning.py), with
the run keys and tags the intake sensors give theirs. Then either:

- **in process** (no daemon dequeues the instance's runs: the embedded default, SQLite under
  ``$GLACIER_HOME``; or ``--in-process``): each planned run is executed here with ``execute_in_process``,
  under a worker lease (defs/intake/run_workers.py) so that a later pass can tell a run whose
  process was killed;
- **submitted** (by default when a Dagster daemon dequeues the instance's runs, as under
  deploy/dagster.yaml or ``dagster dev``; or ``--submit``): each planned run is put on the run
  queue for the daemon to launch, within the queue's limits, and watched until it ends
  (``--no-wait``: queued, then done).

Either way the pass plans again once its runs ended (a tenant with more than a batch gets the
next run), runs a plan at most once, and stops a tenant whose run failed.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any, Iterator

from glacier_pipelines.core.transport import TransportConfigError, TransportError
from glacier_pipelines.runs.common import (
    QUIET_LOGS,
    ConfigFault,
    check_bucket,
    check_tenant,
    current_defs,
    ensure_dagster_home,
    run_restore_job,
    to_stderr as _progress,
)
from glacier_pipelines.settings import Settings

LOCATION_NAME = "glacier_pipelines"  # the code location's name in workspace.yaml and deploy/workspace.yaml: the daemon launches by it
MODES = ("auto", "submit", "in-process")
QUEUE_DAEMON = "QUEUED_RUN_COORDINATOR"  # the daemon that dequeues and launches queued runs
DAEMON_TOLERANCE_SECONDS = 120  # its heartbeat comes every 30 s
COUNTED = ("requests", "verified", "stored", "deduplicated", "failed")


def process(
    tenant: str | None = None,
    *,
    close_packages: bool = False,
    mode: str = "auto",
    wait: bool = True,
    wait_minutes: float = 60.0,
    progress: Callable[[str], None] = _progress,
) -> dict[str, Any]:
    """Drain the transport, run the planned archive runs (in process, or through the run queue), publish responses.

    Refused before anything runs: an invalid or not allowed ``tenant`` (ValueError), ``mode="submit"`` on an
    instance without a run queue (ConfigFault), a broker refusing the login (TransportConfigError), a bucket S3
    refuses (ConfigFault). An unreachable broker does not stop the pass (the catalog's pending work still runs;
    ``brokerUnreachable`` says why nothing new came in); an unreachable S3 does (TransientFault), and the requests
    stay pending.
    """
    import dagster as dg

    from glacier_pipelines.defs.intake.run_workers import fail_runs_of_gone_workers
    from glacier_pipelines.defs.intake.runs import planned_runs
    from glacier_pipelines.defs.intake.sensors import WORKER_ID
    from glacier_pipelines.flows import intake
    from glacier_pipelines.resources.archive import check_tenant_buckets

    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
    if not wait_minutes > 0:
        raise ValueError(f"--wait-minutes {wait_minutes}: give a number of minutes above 0")
    settings = Settings.from_env()
    defs = current_defs()
    resources = defs.resources
    requests = resources["request_transport"]
    if tenant is not None:
        check_tenant(tenant, requests.allowed_tenants() or tuple(settings.tenants))
    ensure_dagster_home(settings)
    with dg.DagsterInstance.get() as instance:
        submit = _submits(instance, mode, progress)
    catalog = resources["catalog"].get()
    broker_fault: str | None = None
    received = intake.IntakeResult()
    with requests.transport() as transport:
        try:
            getattr(transport, "check", lambda: None)()  # a refused login (TransportConfigError) stops here: exit 2
        except TransportConfigError:
            raise
        except TransportError as exc:
            broker_fault = str(exc)
        if broker_fault is None:
            received = intake.drain_requests(
                transport, catalog, max_messages=10**9, max_seconds=3600.0, allowed_tenants=requests.allowed_tenants()
            )
            broker_fault = received.transport_error
    progress(
        f"intake: {received.new} new request(s), {received.duplicates} duplicate(s), {received.invalid} invalid"
        + (f" (stopped: {broker_fault})" if broker_fault else "")
    )
    check_bucket(resources["archive_store"])
    check_tenant_buckets(resources["archive_store"], catalog.tenants_with_work())  # GLACIER_TENANTS_CONFIG's own buckets
    with dg.DagsterInstance.get() as instance:
        fail_runs_of_gone_workers(instance, progress)

        def plan():
            return planned_runs(
                instance, catalog, batch_size=requests.batch_size, concurrency=requests.tenant_runs, tenant=tenant, max_attempts=None
            )  # asked again by someone: no limit on attempts, each plan once per pass

        if submit:
            runs = submit_planned(instance, plan, wait=wait, wait_seconds=wait_minutes * 60, progress=progress)
        else:
            runs = execute_planned(instance, defs, plan, lease_folder=settings.home / "run-workers", progress=progress)
    if close_packages:
        runs += close_all_packages(tenant, progress=progress, defs=defs)
    restores = advance_restores(tenant, progress=progress, defs=defs)
    published = 0
    if broker_fault is None:  # otherwise the responses wait in the catalog's outbox for the next pass
        with requests.transport() as transport:
            published = intake.publish_responses(transport, catalog, worker_id=WORKER_ID)
    report = catalog.report(tenant)
    return {
        "intake": {"new": received.new, "duplicates": received.duplicates, "invalid": received.invalid},
        "brokerUnreachable": broker_fault,
        "mode": "submit" if submit else "in-process",
        "runs": runs,
        "responsesPublished": published,
        "restoreRuns": restores,
        "statuses": dict(Counter(r["status"] for r in report)),
        "requests": report,
    }


def close_all_packages(tenant: str | None = None, *, progress=_progress, defs: Any = None) -> list[dict[str, Any]]:
    """Run package_job with close_all for every tenant that has an open package."""
    import dagster as dg

    from glacier_pipelines.catalog.packages import PackageStore

    defs = current_defs(defs)
    catalog = defs.resources["catalog"].get()
    names = sorted({p["tenant"] for p in PackageStore(catalog).open_packages(tenant, closing=True)})
    runs = []
    with dg.DagsterInstance.get() as instance:
        for name in names:
            result = defs.resolve_job_def("package_job").execute_in_process(
                partition_key=name,
                instance=instance,
                raise_on_error=False,
                tags={"glacier/tenant": name},
                run_config={**QUIET_LOGS, "ops": {"glacier_packages": {"config": {"close_all": True}}}},
            )
            stored = {
                m.asset_key.to_user_string(): m.materialization.metadata.get("packages_stored")
                for m in result.get_asset_materialization_events()
            }
            checks = result.get_asset_check_evaluations()
            runs.append(
                {
                    "tenant": name,
                    "runId": result.run_id,
                    "success": result.success,
                    "job": "package_job",
                    "checksPassed": bool(checks) and all(c.passed for c in checks),
                }
            )
            progress(
                f"tenant {name}: packages closed, run {result.run_id[:8]} {'succeeded' if result.success else 'FAILED'} "
                f"({count.value if (count := stored.get('glacier_packages')) else 0} stored)"
            )
    return runs


def advance_restores(tenant: str | None = None, *, progress=_progress, defs: Any = None) -> list[dict[str, Any]]:
    """Read restore events (or poll where no queue is configured), then run restore_job for tenants with restore work."""
    import dagster as dg

    from glacier_pipelines.flows import restore as restore_flow
    from glacier_pipelines.flows.restore_events import drain_events

    defs = current_defs(defs)
    r = defs.resources
    setup = r["restore"].setup(r["catalog"], r["archive_store"])
    if r["restore"].events_queue_url:
        seen = drain_events(setup, r["restore"].sqs(), r["restore"].events_queue_url)
        progress(f"restore events: {seen.events} applied, {seen.unknown} for unknown objects")
    else:
        checked, completed = restore_flow.poll(setup)
        if checked:
            progress(f"restores polled: {checked} checked, {completed} restored")
    runs = []
    with dg.DagsterInstance.get() as instance:
        for name in setup.store.tenants_with_work():
            if tenant is not None and name != tenant:
                continue
            result = run_restore_job(instance, name, defs=defs)
            runs.append({"tenant": name, "runId": result.run_id, "success": result.success})
            progress(f"tenant {name}: restore run {result.run_id[:8]} {'succeeded' if result.success else 'FAILED'}")
    return runs


def has_run_queue(instance: Any) -> bool:
    """Whether the instance queues runs (Dagster 1.13's default coordinator does, daemon or not)."""
    from dagster._core.run_coordinator import QueuedRunCoordinator

    return isinstance(instance.run_coordinator, QueuedRunCoordinator)


def daemon_alive(instance: Any) -> bool:
    """Whether a daemon dequeues this instance's runs: its run-queue heartbeat is at most DAEMON_TOLERANCE_SECONDS old."""
    from dagster._daemon.controller import get_daemon_statuses

    status = get_daemon_statuses(instance, [QUEUE_DAEMON], ignore_errors=True, heartbeat_tolerance_seconds=DAEMON_TOLERANCE_SECONDS)
    return status[QUEUE_DAEMON].healthy is True


def _submits(instance: Any, mode: str, progress: Callable[[str], None]) -> bool:
    """Whether this pass queues its runs: by default when a daemon dequeues them; ``submit`` needs a run queue."""
    if mode == "in-process":
        return False
    if mode == "auto":
        return has_run_queue(instance) and daemon_alive(instance)
    if not has_run_queue(instance):
        raise ConfigFault(
            f"--submit needs a Dagster instance that queues runs (run_coordinator: QueuedRunCoordinator, Dagster's "
            f"default); the instance at DAGSTER_HOME={os.environ.get('DAGSTER_HOME')} launches them at once instead. "
            "Without --submit, process executes the runs itself; no request was touched"
        )
    if not daemon_alive(instance):
        progress(
            "no Dagster daemon has dequeued runs of this instance lately: the queued runs wait until one runs "
            "(dagster-daemon run, or dagster dev)"
        )
    return True


def _add_partition(instance: Any, tenant: str) -> None:
    from glacier_pipelines.defs.partitions import tenants

    if not instance.has_dynamic_partition(tenants.name, tenant):
        instance.add_dynamic_partitions(tenants.name, [tenant])


def _next_runs(plan: Callable[[], list], stopped: set[str], seen: set[str]) -> list:
    """The planned runs still to start in this pass: none for a tenant whose run failed, no plan twice."""
    todo = [r for r in plan() if r.tenant not in stopped and r.plan_key not in seen]
    seen.update(r.plan_key for r in todo)
    return todo


def execute_planned(
    instance: Any, defs: Any, plan: Callable[[], list], *, lease_folder: Any, progress: Callable[[str], None] = _progress
) -> list[dict[str, Any]]:
    """Execute the planned runs here, one after another, re-planning once they ended, under a worker lease."""
    from glacier_pipelines.defs.intake.run_workers import WorkerLease

    job = defs.resolve_job_def("archive_job")
    runs: list[dict[str, Any]] = []
    stopped: set[str] = set()
    seen: set[str] = set()
    with WorkerLease(lease_folder) as lease:
        while todo := _next_runs(plan, stopped, seen):
            for run in todo:
                _add_partition(instance, run.tenant)
                progress(f"tenant {run.tenant}: archiving...")
                result = job.execute_in_process(
                    partition_key=run.tenant,
                    instance=instance,
                    raise_on_error=False,
                    run_config=QUIET_LOGS,
                    tags={**run.tags, "dagster/run_key": run.run_key, **lease.tags},
                )
                counts = {
                    m.asset_key.to_user_string(): {k: v.value for k, v in m.materialization.metadata.items() if k in COUNTED}
                    for m in result.get_asset_materialization_events()
                }
                checks = [c.passed for c in result.get_asset_check_evaluations()]
                runs.append(_summary(run, result.run_id, result.success, counts, checks))
                progress(
                    f"tenant {run.tenant}: run {result.run_id[:8]} {'succeeded' if result.success else 'FAILED'}: "
                    + "; ".join(f"{k} {v}" for k, v in counts.items())
                )
                if not result.success:
                    stopped.add(run.tenant)
    return runs


def _summary(run: Any, run_id: str, success: bool, counts: dict, checks: list[bool], **extra: Any) -> dict[str, Any]:
    return {
        "tenant": run.tenant,
        "runId": run_id,
        "runKey": run.run_key,
        "success": success,
        "assets": counts,
        "checksPassed": bool(checks) and all(checks),
        **extra,
    }


@contextmanager
def _archive_job_origin(instance: Any) -> Iterator[tuple[Any, Any, Any, Any]]:
    """The workspace, code location, repository and archive_job as the daemon knows them (location ``glacier_pipelines``)."""
    from dagster import __version__
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget

    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(executable_path=sys.executable, module_name="glacier_pipelines.definitions", working_directory=os.getcwd()),
        location_name=LOCATION_NAME,
    )
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget([origin]), version=__version__) as context:
        workspace = context.create_request_context()
        location = workspace.get_code_location(LOCATION_NAME)
        [repository] = location.get_repositories().values()
        yield workspace, location, repository, repository.get_full_job("archive_job")


def submit_planned(
    instance: Any,
    plan: Callable[[], list],
    *,
    wait: bool = True,
    wait_seconds: float = 3600.0,
    poll_seconds: float = 1.0,
    progress: Callable[[str], None] = _progress,
) -> list[dict[str, Any]]:
    """Put the planned runs on the instance's run queue; unless ``wait`` is False, watch them end and plan again."""
    from dagster._cli.job import _create_run

    runs: list[dict[str, Any]] = []
    stopped: set[str] = set()
    seen: set[str] = set()
    deadline = time.monotonic() + wait_seconds
    with _archive_job_origin(instance) as (workspace, location, repository, job):
        while todo := _next_runs(plan, stopped, seen):
            queued = []
            for run in todo:
                _add_partition(instance, run.tenant)
                created = _create_run(
                    instance=instance,
                    code_location=location,
                    remote_repo=repository,
                    remote_job=job,
                    run_config={},
                    tags=run.all_tags(),
                    op_selection=None,
                    run_id=None,
                )
                instance.submit_run(created.run_id, workspace)
                progress(f"tenant {run.tenant}: run {created.run_id[:8]} queued ({run.run_key})")
                queued.append((run, created.run_id))
            if not wait:
                runs += [_summary(run, run_id, True, {}, [], status="QUEUED") for run, run_id in queued]
                break
            for run, run_id in queued:
                runs.append(_watch(instance, run, run_id, deadline, poll_seconds, progress))
                if not runs[-1]["success"]:
                    stopped.add(run.tenant)
            if any(r["status"] not in ("SUCCESS", "FAILURE", "CANCELED") for r in runs):
                break  # out of time: what is still queued or running ends without this pass
    return runs


def _watch(instance: Any, run: Any, run_id: str, deadline: float, poll_seconds: float, progress: Callable[[str], None]) -> dict[str, Any]:
    """Wait (until ``deadline``) for a queued run to end; its counts and checks from the instance's event log."""
    import dagster as dg
    from dagster._core.storage.tags import PARENT_RUN_ID_TAG

    from glacier_pipelines.defs.intake.runs import awaiting_retry

    first = run_id
    while True:
        current = instance.get_run_by_id(run_id)
        retries = instance.get_runs(filters=dg.RunsFilter(tags={PARENT_RUN_ID_TAG: run_id}), limit=1) if current.is_finished else []
        if retries:  # Dagster's run_retries ran it again (its worker died): the retry continues the batch
            progress(f"tenant {run.tenant}: run {run_id[:8]} {current.status.value}; Dagster retries it as run {retries[0].run_id[:8]}")
            run_id = retries[0].run_id
            continue
        if (current.is_finished and not awaiting_retry(instance, current)) or time.monotonic() > deadline:
            break
        time.sleep(poll_seconds)
    status = current.status.value
    counts: dict[str, dict[str, Any]] = {}
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records:
        materialization = record.event_log_entry.dagster_event.event_specific_data.materialization
        counts[materialization.asset_key.to_user_string()] = {k: v.value for k, v in materialization.metadata.items() if k in COUNTED}
    checks = [
        record.event_log_entry.dagster_event.event_specific_data.passed
        for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    ]
    if current.is_finished:
        progress(f"tenant {run.tenant}: run {run_id[:8]} {'succeeded' if current.status == dg.DagsterRunStatus.SUCCESS else status}")
    else:
        progress(
            f"tenant {run.tenant}: run {run_id[:8]} still {status} when the wait ended: is the daemon running? "
            "It stays on the queue, and its work in the catalog"
        )
    return _summary(
        run,
        run_id,
        current.status == dg.DagsterRunStatus.SUCCESS,
        counts,
        checks,
        status=status,
        **({"retryOf": first} if run_id != first else {}),
    )
