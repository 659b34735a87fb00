"""The process side: ``glacier-pipelines process`` SIGKILLed at random points of a batch, then run again.

Each kill comes a delay drawn with a fixed seed after the run claimed its batch (the first one
once a multipart upload is in flight), so kills fall in the verify step (uploads open, files
staged), the store step, or between the two. Progress counts 1 per verified request and 2 per
finished one. After
the last kill one run goes to the end; it must adopt the dead runs' work, finish every request
once, store nothing twice, and leave nothing behind once the project's clean-up of abandoned
multipart uploads has run.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from glacier_pipelines_tests.faults import invariants
from glacier_pipelines_tests.faults.conftest import MiB, direct_client

pytestmark = [pytest.mark.faults, pytest.mark.slow]
SCRIPT = str(Path(sys.executable).with_name("glacier-pipelines"))
SEED = 20261122
KILLS = 3


def _state(db: Path) -> tuple[int, int]:
    """(batches claimed so far, progress): progress counts 1 per verified request and 2 per finished one."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            rows = conn.execute("SELECT status, count(*) FROM requests GROUP BY status").fetchall()
            (batches,) = conn.execute("SELECT count(*) FROM batches").fetchone()
    except sqlite3.Error:
        return -1, -1
    weight = {"VERIFIED": 1, "SUCCESS": 2, "ERROR": 2, "INVALID_CONTENT": 2}
    return batches, sum(weight.get(status, 0) * n for status, n in rows)


def _run(env: dict[str, str], db: Path, kill_after: float | None, log: Path, timeout: float = 120, armed=lambda: True) -> tuple[bool, str]:
    """Start ``process``; SIGKILL it ``kill_after`` seconds after its run claimed its batch and ``armed()`` became true.

    Returns (killed, where it was killed)."""
    started = time.monotonic()
    batches_before = _state(db)[0]
    claimed_at = None
    with open(log, "ab") as out:
        proc = subprocess.Popen([SCRIPT, "process", "--json"], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while proc.poll() is None:
                if kill_after is not None:
                    if claimed_at is None and _state(db)[0] > batches_before and armed():
                        claimed_at = time.monotonic()
                    if claimed_at is not None and time.monotonic() - claimed_at >= kill_after:
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait()
                        return True, f"{_state(db)[1]}"
                if time.monotonic() - started > timeout:
                    raise AssertionError(f"process did not finish within {timeout} s")
                time.sleep(0.005)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return False, f"finished (exit {proc.returncode})" + (f" before {kill_after:.2f} s" if kill_after is not None else "")


def test_sigkill_at_random_points_then_rerun(tmp_path, moto_endpoint, reliability):
    from glacier_pipelines.catalog import Catalog
    from glacier_pipelines.core.transport import EmbeddedTransport, submission_to_message
    from glacier_pipelines.flows import intake

    rng = random.Random(SEED)
    home, src, bucket = tmp_path / "home", tmp_path / "src", f"kill-{os.getpid()}-{rng.randrange(10**6)}"
    src.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GLACIER_", "AWS_", "DAGSTER_"))}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "GLACIER_HOME": str(home),
            "GLACIER_S3_ENDPOINT_URL": moto_endpoint,
            "GLACIER_BUCKET": bucket,
            "GLACIER_STORAGE_CLASS": "STANDARD",
            "GLACIER_SOURCE_ROOTS": str(src),
            "GLACIER_PART_SIZE_MB": "5",
            "GLACIER_MULTIPART_THRESHOLD_MB": "5",
            "GLACIER_UPLOAD_CONCURRENCY": "2",
            "GLACIER_REQUEST_TRANSPORT": "embedded",
        }
    )
    s3 = direct_client(moto_endpoint)
    s3.create_bucket(Bucket=bucket)

    # The batch: 10 small files (staged on disk, one PutObject each) and 4 large ones (multipart), put into the catalog.
    submitted, sizes = [], [rng.randrange(1000, 60_000) for _ in range(10)] + [6 * MiB, 8 * MiB, 11 * MiB, 12 * MiB]
    rng.shuffle(sizes)
    home.mkdir()
    catalog = Catalog(f"sqlite:///{home / 'catalog.sqlite'}")
    with EmbeddedTransport(home / "spool") as transport:
        for i, size in enumerate(sizes):
            data = rng.randbytes(size)
            (src / f"f{i}").write_bytes(data)
            submitted.append(invariants.Submitted("lab", f"f{i}", data))
            transport.publish_request(
                *submission_to_message(
                    {
                        "tenant": "lab",
                        "requestId": f"f{i}",
                        "checksum": hashlib.md5(data).hexdigest(),
                        "algorithm": "MD5",
                        "url": (src / f"f{i}").as_uri(),
                        "destinationDirectory": "d",
                    }
                )
            )
        assert intake.drain_requests(transport, catalog).new == len(sizes)

    db, log, kills, points, abandoned = home / "catalog.sqlite", tmp_path / "process.log", 0, [], set()
    for n in range(KILLS):
        # The first kill waits for a multipart upload in flight (the costliest thing to abandon); the others come at
        # a random time after the claim.
        upload_open = (lambda: bool(s3.list_multipart_uploads(Bucket=bucket).get("Uploads"))) if n == 0 else (lambda: True)
        killed, where = _run(env, db, 0.0 if n == 0 else rng.uniform(0.0, 1.6), log, armed=upload_open)
        kills += killed
        abandoned |= set(invariants.abandoned_uploads(catalog, s3, bucket, "archive", "lab"))
        points.append(f"{where}/{2 * len(sizes)}" + (" (an upload in flight)" if n == 0 else "") if killed else where)
    assert kills >= 2, f"the kills must land inside the batch: {points}"
    assert len(abandoned) >= 1, "the first kill, with an upload in flight, must have abandoned it"
    assert _run(env, db, None, log) == (False, "finished (exit 0)"), log.read_text()[-3000:]

    with EmbeddedTransport(home / "spool") as transport:
        published = [
            (m.headers.get("regards.tenant"), json.loads(m.body)["requestId"], json.loads(m.body)["status"])
            for m in transport.read_responses(10_000)
        ]
    tally = invariants.check(catalog, s3, bucket, "archive", submitted, published=published, cleanup=True, staging_dir=home / "staging")
    catalog.dispose()
    reliability(
        f"process SIGKILLed at random points of a batch, then rerun (seed {SEED}; killed at progress {', '.join(points)})",
        kills,
        tally,
        side="process",
        outcome=f"{len(abandoned)} multipart upload(s) abandoned by the kills, aborted by the next run's clean-up "
        f"({tally.aborted_by_cleanup} left for the checker's)",
    )


def test_runs_of_processes_that_are_gone_are_marked_failed(tmp_path):
    """The part of the fix the kill test relies on, alone: only runs whose worker lease nobody holds on this host are failed.

    (Was: runs tagged with the pid of a dead process. A pid can be reused; a lease held with flock cannot outlive its
    process. See defs/intake/run_workers.py.)
    """
    import dagster as dg
    from dagster._core.storage.dagster_run import DagsterRun

    from glacier_pipelines.defs.intake import run_workers

    hold = (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR); fcntl.flock(fd, fcntl.LOCK_EX); "
        "print('held', flush=True); time.sleep(60)"
    )
    leases = {name: tmp_path / f"{name}.lock" for name in ("gone", "alive")}
    holders = {
        name: subprocess.Popen([sys.executable, "-c", hold, str(path)], stdout=subprocess.PIPE, text=True) for name, path in leases.items()
    }
    for proc in holders.values():
        assert proc.stdout.readline().strip() == "held"
    holders["gone"].kill()
    holders["gone"].wait()
    host = socket.gethostname()
    try:
        with dg.instance_for_test() as instance:
            runs = {}
            for name, tags in {
                "gone": {run_workers.LEASE_TAG: str(leases["gone"]), run_workers.HOST_TAG: host},
                "alive": {run_workers.LEASE_TAG: str(leases["alive"]), run_workers.HOST_TAG: host},
                "elsewhere": {run_workers.LEASE_TAG: str(leases["gone"]), run_workers.HOST_TAG: host + "-other"},
                "untagged": {},
            }.items():
                runs[name] = instance.add_run(
                    DagsterRun(job_name="archive_job", run_id=f"{name}-run", status=dg.DagsterRunStatus.STARTED, tags=tags)
                )
            assert run_workers.fail_runs_of_gone_workers(instance) == ["gone-run"]
            status = {name: instance.get_run_by_id(run.run_id).status for name, run in runs.items()}
    finally:
        holders["alive"].kill()
        holders["alive"].wait()
    assert status == {
        "gone": dg.DagsterRunStatus.FAILURE,
        "alive": dg.DagsterRunStatus.STARTED,
        "elsewhere": dg.DagsterRunStatus.STARTED,
        "untagged": dg.DagsterRunStatus.STARTED,
    }
