"""A run worker SIGKILLed in the middle of ``glacier_objects``, at the costliest point, then the work taken over.

``glacier-pipelines process`` executes the run in its own process (the embedded default). The test-only
pause (pause_hook.py, installed from outside the code) stops it when the second object of the batch is
in S3 and its staged copy removed, but not yet in the catalog; the test then SIGKILLs it. The run stays
STARTED in the instance. The next ``process`` finds that its worker's lease is free, reports the run
failed through the instance, and the planner's next run takes its batch over. Afterwards every request
is answered once (outbox and transport), no object in the bucket lacks a catalog row, nothing staged
is left, and every check of the run that finished passed.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from glacier_pipelines_tests.faults import invariants, pause_hook
from glacier_pipelines_tests.faults.conftest import MiB, direct_client

pytestmark = [pytest.mark.faults, pytest.mark.slow]
SCRIPT = str(Path(sys.executable).with_name("glacier-pipelines"))
ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, endpoint: str, bucket: str, src: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GLACIER_", "AWS_", "DAGSTER_"))}
    hooks = pause_hook.sitecustomize_dir(tmp_path / "hooks")
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "GLACIER_HOME": str(tmp_path / "home"),
            "GLACIER_S3_ENDPOINT_URL": endpoint,
            "GLACIER_BUCKET": bucket,
            "GLACIER_STORAGE_CLASS": "STANDARD",
            "GLACIER_SOURCE_ROOTS": str(src),
            "GLACIER_PART_SIZE_MB": "5",
            "GLACIER_MULTIPART_THRESHOLD_MB": "5",
            "GLACIER_UPLOAD_CONCURRENCY": "2",
            "GLACIER_REQUEST_TRANSPORT": "embedded",
            "PYTHONPATH": os.pathsep.join([str(hooks), str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            pause_hook.PAUSE_FILE: str(tmp_path / "paused.pid"),
            pause_hook.AFTER: "1",
        }
    )
    return env


def test_a_worker_killed_in_the_middle_of_glacier_objects_loses_nothing_and_answers_nothing_twice(tmp_path, moto_endpoint, reliability):
    import dagster as dg

    from glacier_pipelines.catalog import Catalog
    from glacier_pipelines.catalog import tables as t
    from glacier_pipelines.core.ledger import is_ledger_key
    from glacier_pipelines.core.transport import EmbeddedTransport, submission_to_message

    src, bucket = tmp_path / "src", f"dies-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    src.mkdir()
    env = _env(tmp_path, moto_endpoint, bucket, src)
    home = Path(env["GLACIER_HOME"])
    s3 = direct_client(moto_endpoint)
    s3.create_bucket(Bucket=bucket)
    # Four small files (staged, one PutObject each) and one large one (a multipart upload completed by glacier_objects).
    sizes = [3000, 7 * MiB, 4000, 5000, 6000]
    submitted = []
    with EmbeddedTransport(home / "spool") as transport:
        for i, size in enumerate(sizes):
            data = os.urandom(size)
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

    log = open(tmp_path / "first.log", "wb")
    first = subprocess.Popen([SCRIPT, "process", "--json"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while (pid := pause_hook.paused_pid(tmp_path / "paused.pid")) is None:
            assert first.poll() is None, f"process ended before the pause:\n{(tmp_path / 'first.log').read_text()[-3000:]}"
            assert time.monotonic() < deadline, "never reached the second object of glacier_objects"
            time.sleep(0.05)
        assert pid == first.pid, "the pause is in the process executing the run"
        catalog = Catalog(f"sqlite:///{home / 'catalog.sqlite'}")
        before = Counter(catalog.status_counts("lab"))
        assert before == {"STORED": 1, "VERIFIED": 4}, before  # one object recorded, the next one in S3 only
        in_bucket = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
        assert len(in_bucket - {o.key for o in catalog.objects("lab")}) == 1, "the object being recorded is in S3 without a row"
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
        log.close()

    dagster_home = home / "dagster"  # the embedded default instance the command made
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        [killed] = instance.get_runs(filters=dg.RunsFilter(job_name="archive_job"))
        assert killed.status == dg.DagsterRunStatus.STARTED, "SIGKILLed: nobody told the instance"

    again = subprocess.run([SCRIPT, "process", "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    summary = json.loads(again.stdout)
    assert "marked failed: its worker is gone (its process ended without finishing the run)" in again.stderr
    assert [r["success"] for r in summary["runs"]] == [True] and summary["runs"][0]["checksPassed"], summary["runs"]
    assert summary["statuses"] == {"SUCCESS": len(sizes)}

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = {run.run_id: run for run in instance.get_runs(filters=dg.RunsFilter(job_name="archive_job"))}
        assert runs[killed.run_id].status == dg.DagsterRunStatus.FAILURE
        [taker] = [run for run in runs.values() if run.run_id != killed.run_id]
        assert taker.status == dg.DagsterRunStatus.SUCCESS
        assert taker.tags["glacier/plan-key"] != killed.tags["glacier/plan-key"], "planned for the abandoned batch, not the first state"
        checks = [
            e.dagster_event.event_specific_data.passed
            for e in instance.all_logs(taker.run_id)
            if e.dagster_event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ]
        assert checks and all(checks)

    # Every request answered exactly once: in the outbox, and on the transport.
    with catalog.engine.connect() as conn:
        outbox = Counter(conn.execute(sa.select(t.responses.c.request_id).where(t.responses.c.status.in_(t.TERMINAL))).scalars())
    assert outbox == {s.request_id: 1 for s in submitted}
    with EmbeddedTransport(home / "spool") as transport:
        published = [
            (m.headers.get("regards.tenant"), json.loads(m.body)["requestId"], json.loads(m.body)["status"])
            for m in transport.read_responses(100)
        ]
    assert Counter(rid for _, rid, _ in published) == {s.request_id: 1 for s in submitted}
    # No object without a catalog row anywhere in the bucket (the request ledger is named by none, by design).
    named = {o.key for o in catalog.objects("lab")}
    everything = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert {k for k in everything - named if not is_ledger_key(k)} == set()
    tally = invariants.check(catalog, s3, bucket, "archive", submitted, published=published, staging_dir=home / "staging")
    catalog.dispose()
    reliability(
        "process SIGKILLed inside glacier_objects (second object in S3, not yet recorded), then process again",
        1,
        tally,
        side="process",
        outcome="the killed run marked failed through the instance (its worker lease was free); the next run took its batch over",
    )
