"""Runs executed inside a ``glacier-pipelines`` process, and how a later process tells that their worker is gone.

Dagster watches the workers of the runs it launches: the code server reports a run failed when
its run process dies, and the daemon's run monitoring asks launchers that can check their
workers (Kubernetes, Celery, ECS), then ``run_retries`` starts a new run that continues the
batch. A run executed in the calling process (``execute_in_process``: ``process`` on an
instance without a run queue) has no launcher and no daemon: a SIGKILL leaves it STARTED
forever, and the catalog only adopts the batches of runs that are over.

So the process holds a lease while it runs them: an exclusive ``flock`` on a file whose path,
host and boot are in each run's tags. The kernel drops the lock when the process ends, however
it ends. Process ids are not used: one can be reused by an unrelated process. The next
``process``, and every intake sensor tick on that machine, reports the runs of a lease nobody
holds as failed through the instance (``report_run_failed``), and the planner then adopts their
batches. Runs of another machine are left to it.
"""

from __future__ import annotations

import fcntl
import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path

import dagster as dg
from dagster._core.events import JobFailureData, RunFailureReason

LEASE_TAG = "glacier/run-worker-lease"
HOST_TAG = "glacier/run-worker-host"
BOOT_TAG = "glacier/run-worker-boot"
UNFINISHED = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def boot_id() -> str:
    """This machine's boot (Linux): a lease from an earlier boot died with it."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


class WorkerLease:
    """Held for as long as this process may execute runs; ``tags`` go on each of them."""

    def __init__(self, folder: Path):
        self.path = Path(folder).resolve() / f"{uuid.uuid4().hex}.lock"
        self._fd: int | None = None

    def __enter__(self) -> "WorkerLease":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)  # releases the lock
            self._fd = None

    @property
    def tags(self) -> dict[str, str]:
        return {LEASE_TAG: str(self.path), HOST_TAG: socket.gethostname(), BOOT_TAG: boot_id()}


def _gone(tags: dict[str, str]) -> str | None:
    """Why the worker named by these tags is gone, or None while it holds its lease."""
    if tags.get(BOOT_TAG) and boot_id() and tags[BOOT_TAG] != boot_id():
        return "the machine restarted since"
    try:
        fd = os.open(tags[LEASE_TAG], os.O_RDWR)
    except FileNotFoundError:
        return "its lease file is gone"
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return None  # held: the process is running (it may be this one)
    finally:
        os.close(fd)
    return "its process ended without finishing the run"


def fail_runs_of_gone_workers(instance: dg.DagsterInstance, progress: Callable[[str], None] = lambda message: None) -> list[str]:
    """Report failed every unfinished run of this machine whose worker no longer holds its lease; their ids."""
    failed, released = [], set()
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED, tags={HOST_TAG: socket.gethostname()}))
    for run in runs:
        if LEASE_TAG not in run.tags:
            continue
        why = _gone(dict(run.tags))
        if why is None:
            continue
        instance.report_run_failed(
            run,
            message=f"the glacier-pipelines process executing this run is gone ({why}); the next run takes its batch over",
            job_failure_data=JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION),
        )
        progress(f"run {run.run_id[:8]} ({run.tags.get('dagster/partition', '?')}) marked failed: its worker is gone ({why})")
        failed.append(run.run_id)
        released.add(run.tags[LEASE_TAG])
    for path in released:
        Path(path).unlink(missing_ok=True)
    return failed
