"""Runs executed inside a glacier-pipelines process: a lease says their worker lives; runs of a gone worker are failed."""

from __future__ import annotations

import signal
import subprocess
import sys

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRun

from glacier_pipelines.defs.intake import run_workers
from glacier_pipelines.defs.intake.run_workers import WorkerLease, fail_runs_of_gone_workers

HOLD = (
    "import sys; sys.path[:0] = sys.argv[2:]; from glacier_pipelines.defs.intake.run_workers import WorkerLease; "
    "import pathlib, time; lease = WorkerLease(pathlib.Path(sys.argv[1])).__enter__(); print(lease.path, flush=True); time.sleep(60)"
)


def _run(instance, run_id: str, tags: dict[str, str], status=dg.DagsterRunStatus.STARTED) -> None:
    instance.add_run(DagsterRun(job_name="archive_job", run_id=run_id, status=status, tags=tags))


def _status(instance, run_id: str) -> dg.DagsterRunStatus:
    return instance.get_run_by_id(run_id).status


def test_a_run_of_a_live_lease_is_left_alone_and_its_file_goes_with_the_lease(tmp_path, instance):
    with WorkerLease(tmp_path) as lease:
        assert lease.path.exists() and set(lease.tags) == {run_workers.LEASE_TAG, run_workers.HOST_TAG, run_workers.BOOT_TAG}
        _run(instance, "mine", lease.tags)
        assert fail_runs_of_gone_workers(instance) == []  # held by this very process: alive
        assert _status(instance, "mine") == dg.DagsterRunStatus.STARTED
    assert not lease.path.exists()


def test_a_sigkilled_worker_is_found_by_its_lease_and_its_runs_are_failed_with_the_reason(tmp_path, instance):
    worker = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), *sys.path], stdout=subprocess.PIPE, text=True)
    try:
        path = worker.stdout.readline().strip()
        with WorkerLease(tmp_path) as probe:  # the same tags as the worker's, apart from the path
            tags = {**probe.tags, run_workers.LEASE_TAG: path}
        _run(instance, "killed", tags)
        _run(instance, "queued-before", tags, status=dg.DagsterRunStatus.NOT_STARTED)
        _run(instance, "done", tags, status=dg.DagsterRunStatus.SUCCESS)
        assert fail_runs_of_gone_workers(instance) == [], "the worker still holds its lease"
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        messages = []
        assert sorted(fail_runs_of_gone_workers(instance, messages.append)) == ["killed", "queued-before"]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert [_status(instance, r) for r in ("killed", "queued-before", "done")] == [
        dg.DagsterRunStatus.FAILURE,
        dg.DagsterRunStatus.FAILURE,
        dg.DagsterRunStatus.SUCCESS,
    ]
    failure = [e for e in instance.all_logs("killed") if e.dagster_event_type == dg.DagsterEventType.RUN_FAILURE]
    assert "process ended without finishing the run" in failure[0].message
    assert len(messages) == 2 and all("its worker is gone" in m for m in messages)
    assert fail_runs_of_gone_workers(instance) == [], "failed once, not again"


def test_a_lease_of_an_earlier_boot_or_without_its_file_is_gone_and_another_hosts_runs_are_not_judged(tmp_path, instance):
    with WorkerLease(tmp_path) as lease:
        alive = lease.tags
        _run(instance, "earlier-boot", {**alive, run_workers.BOOT_TAG: "an-earlier-boot"})
        _run(instance, "no-file", {**alive, run_workers.LEASE_TAG: str(tmp_path / "wiped.lock")})
        _run(instance, "other-host", {**alive, run_workers.HOST_TAG: "another-machine", run_workers.LEASE_TAG: str(tmp_path / "x.lock")})
        _run(instance, "launched-by-dagster", {})  # Dagster's own run monitoring watches these
        failed = fail_runs_of_gone_workers(instance)
    expected = ["no-file"] + (["earlier-boot"] if run_workers.boot_id() else [])
    assert sorted(failed) == sorted(expected)
    assert _status(instance, "other-host") == dg.DagsterRunStatus.STARTED
    assert _status(instance, "launched-by-dagster") == dg.DagsterRunStatus.STARTED
