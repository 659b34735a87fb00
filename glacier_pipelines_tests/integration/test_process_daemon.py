"""``process`` under the production instance: its runs go through the daemon's queue, and a run worker killed mid-step is
found and retried by Dagster itself.

deploy/dagster.yaml unchanged on a fresh PostgreSQL database (run queue, run monitoring, run retries), a gRPC code
server and ``dagster-daemon run`` as subprocesses, sensors off, S3 on a moto server. ``glacier-pipelines process``
sees a live daemon and queues the planned run. The test-only pause (faults/pause_hook.py, on the code server's
PYTHONPATH, so in the run worker it spawns) stops the run in ``glacier_objects`` with the second object in S3 and
not yet in the catalog; the test SIGKILLs that run worker. Nothing of ours notices: the code server reports the run
failed (its run process died), ``run_retries`` starts a retry of the same root run, which continues the batch, and
``process`` follows the retry to its end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import boto3
import pytest

from glacier_pipelines.emulator import free_port, moto_server
from glacier_pipelines_tests.faults import pause_hook
from glacier_pipelines_tests.integration.conftest import Processes, archive_env, catalog_report, write_requests

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_process_queues_its_runs_for_the_daemon_and_a_killed_run_worker_is_retried_by_dagster(tmp_path, postgres_url, monkeypatch):
    import dagster as dg
    import sqlalchemy as sa

    from glacier_pipelines.catalog import tables as t
    from glacier_pipelines.runs.process import daemon_alive
    from glacier_pipelines.core.ledger import is_ledger_key

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    bucket = f"daemon-{uuid.uuid4().hex[:8]}"
    code_port = free_port()
    pause = tmp_path / "paused.pid"
    hooks = pause_hook.sitecustomize_dir(tmp_path / "hooks")
    processes = Processes(tmp_path)
    with moto_server() as endpoint:
        env = archive_env(
            tmp_path,
            endpoint,
            bucket,
            GLACIER_CATALOG_URL=postgres_url,
            DAGSTER_HOME=str(home),
            DAGSTER_PG_URL=postgres_url,
            DAGSTER_CODE_SERVER_HOST="127.0.0.1",
            DAGSTER_CODE_SERVER_PORT=str(code_port),
            GLACIER_STORAGE_CLASS="STANDARD",
            PYTHONPATH=os.pathsep.join([str(hooks), str(ROOT)]),
        )
        code_env = {**env, pause_hook.PAUSE_FILE: str(pause), pause_hook.AFTER: "1"}  # only the code server and its run workers pause
        s3 = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        s3.create_bucket(Bucket=bucket)
        requests = write_requests(tmp_path / "sources", {"lab": 4}, prefix="d-")
        (tmp_path / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in requests))
        submitted = subprocess.run(
            [str(BIN / "glacier-pipelines"), "submit", str(tmp_path / "requests.jsonl")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert submitted.returncode == 0, submitted.stderr
        monkeypatch.setenv("DAGSTER_PG_URL", postgres_url)
        try:
            processes.start(
                "code-server",
                [
                    str(BIN / "dagster"),
                    "code-server",
                    "start",
                    "-m",
                    "glacier_pipelines.definitions",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(code_port),
                    "--location-name",
                    "glacier_pipelines",
                ],
                code_env,
                ROOT,
            )
            processes.wait_for(
                "the code server",
                lambda: (
                    subprocess.run(
                        [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(code_port), "-h", "127.0.0.1"],
                        env=env,
                        capture_output=True,
                        timeout=60,
                    ).returncode
                    == 0
                ),
                120,
            )
            processes.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(ROOT / "deploy" / "workspace.yaml")], env, ROOT)
            with dg.DagsterInstance.from_config(str(home)) as instance:
                processes.wait_for("the daemon's first heartbeat", lambda: daemon_alive(instance), 120)

            out, err = open(tmp_path / "process.out", "wb"), open(tmp_path / "process.err", "wb")
            proc = subprocess.Popen(
                [str(BIN / "glacier-pipelines"), "process", "--json", "--wait-minutes", "8"],
                env=env,
                cwd=tmp_path,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
            try:
                processes.wait_for("the run worker to pause inside glacier_objects", lambda: pause_hook.paused_pid(pause) is not None, 300)
                worker = pause_hook.paused_pid(pause)
                assert worker not in {proc.pid, *(p.pid for p in processes.procs.values())}, "the pause is in a run worker"
                os.kill(worker, signal.SIGKILL)
                proc.wait(timeout=600)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                out.close()
                err.close()
            said = (tmp_path / "process.err").read_text()
            assert proc.returncode == 0, said[-4000:] + processes.logs_tail()
            assert "Dagster retries it as run" in said
            summary = json.loads((tmp_path / "process.out").read_text())

            with dg.DagsterInstance.from_config(str(home)) as instance:
                runs = {r.run_id: r for r in instance.get_runs(filters=dg.RunsFilter(job_name="archive_job"))}
                [result] = summary["runs"]
                assert summary["mode"] == "submit" and result["success"] and result["checksPassed"], summary["runs"]
                killed, retry = runs[result["retryOf"]], runs[result["runId"]]
                assert killed.status == dg.DagsterRunStatus.FAILURE and retry.status == dg.DagsterRunStatus.SUCCESS
                assert retry.tags["dagster/root_run_id"] == killed.run_id
                assert retry.tags["glacier/plan-key"] == killed.tags["glacier/plan-key"]
                assert len(runs) == 2, "nothing else was planned for the batch while Dagster retried it"
                events = {run_id: [e for e in instance.all_logs(run_id) if e.is_dagster_event] for run_id in runs}
                kinds = [e.dagster_event_type for e in events[killed.run_id]]
                assert kinds.index(dg.DagsterEventType.RUN_ENQUEUED) < kinds.index(dg.DagsterEventType.RUN_STARTING), (
                    "queued by process, launched by the daemon"
                )
                assert any("Run execution process" in (e.message or "") for e in events[killed.run_id]), (
                    "the code server found its run process gone"
                )
                assert any(
                    e.dagster_event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION and e.dagster_event.event_specific_data.passed
                    for e in events[retry.run_id]
                )
        finally:
            processes.stop()

        report = catalog_report(env, monkeypatch)
        assert {r["requestId"]: report[r["requestId"]]["status"] for r in requests} == {r["requestId"]: "SUCCESS" for r in requests}
        engine = sa.create_engine(postgres_url)
        with engine.connect() as conn:
            answers = Counter(conn.execute(sa.select(t.responses.c.request_id).where(t.responses.c.status.in_(t.TERMINAL))).scalars())
            named = set(conn.execute(sa.select(t.objects.c.key)).scalars())
        engine.dispose()
        assert answers == {r["requestId"]: 1 for r in requests}, "every request answered exactly once"
        everything = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
        assert {k for k in everything - named if not is_ledger_key(k)} == set(), "no object without a catalog row"
        assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
        staging = tmp_path / "glacier_home" / "staging"
        assert not [p for p in staging.rglob("*") if p.is_file()], "nothing left staged"
