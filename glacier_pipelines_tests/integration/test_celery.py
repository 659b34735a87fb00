"""Steps on a Celery worker over RabbitMQ (issue #15): dagster-celery's executor, a worker that shares no local folder.

The launcher (``dagster job execute``, as an operator types it) and the worker (``dagster-celery worker start``) each
have their own working directory, GLACIER_HOME and DAGSTER_HOME; both read deploy/dagster.yaml's PostgreSQL storage in
one fresh database, which also holds the catalog. The broker is this machine's RabbitMQ, on a vhost of the test's own.
Sources, the archive and the staging area (GLACIER_STAGING_URL) are buckets on a moto server, so a staged small file
verified by one step and packed by a later run is read from S3, never from another step's disk.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from pathlib import Path

import boto3
import pytest

from glacier_pipelines.emulator import moto_server
from glacier_pipelines_tests.integration.conftest import (
    Processes,
    archive_env,
    catalog_report,
    celery_side,
    celery_worker_ready,
    dagster_execute,
    persist_requests,
    start_celery_worker,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres,
    pytest.mark.amqp,
    pytest.mark.slow,
    pytest.mark.timeout(900),
]  # its own waits bound it first

TENANT = "lab"
CLOSE_ALL = {"ops": {"glacier_packages": {"config": {"close_all": True}}}}


def _runs(instance, kind: str):
    import dagster as dg

    return [r.dagster_run for r in instance.get_run_records(dg.RunsFilter(tags={"glacier/celery-test": kind}))]


def _checks(instance, run_id: str) -> dict[str, bool]:
    import dagster as dg

    return {
        e.dagster_event.event_specific_data.check_name: e.dagster_event.event_specific_data.passed
        for e in instance.all_logs(run_id)
        if e.dagster_event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    }


def test_archive_package_and_restore_with_steps_on_a_celery_worker(tmp_path, postgres_url, celery_broker, monkeypatch):
    import dagster as dg

    from glacier_pipelines.core.restores import parse_restore_request
    from glacier_pipelines.flows import restore as restore_flow
    from glacier_pipelines.resources import resources_from_env

    bucket, sources, staging = (f"{name}-{uuid.uuid4().hex[:8]}" for name in ("celery", "sources", "staging"))
    processes = Processes(tmp_path)
    with moto_server() as endpoint:
        base = archive_env(
            tmp_path,
            endpoint,
            bucket,
            GLACIER_CATALOG_URL=postgres_url,
            DAGSTER_PG_URL=postgres_url,
            GLACIER_STAGING_URL=f"s3://{staging}/staged",
            GLACIER_SOURCE_ROOTS="",
        )
        launcher, launcher_dir = celery_side(tmp_path, "launcher", base, celery_broker.url)
        worker, worker_dir = celery_side(tmp_path, "worker", base, celery_broker.url)
        s3 = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        for name in (bucket, sources, staging):
            s3.create_bucket(Bucket=name)

        # One file stored alone, three small ones packaged; sources in S3, so the worker reads no local file of ours.
        files = {
            "alone": b"a file stored as its own object " * 400,
            **{f"small-{i}": hashlib.sha256(bytes([i])).digest() * (10 + i) for i in range(3)},
        }
        requests = []
        for rid, data in files.items():
            s3.put_object(Bucket=sources, Key=f"in/{rid}.bin", Body=data)
            requests.append(
                {
                    "tenant": TENANT,
                    "requestId": rid,
                    "checksum": hashlib.md5(data).hexdigest(),
                    "algorithm": "MD5",
                    "url": f"s3://{sources}/in/{rid}.bin",
                    "destinationDirectory": "scans",
                    "owner": "alice",
                    "session": "s-2026",
                    "activateSmallFilePackaging": rid != "alone",
                }
            )
        persist_requests(launcher, requests, monkeypatch)
        for name in ("DAGSTER_PG_URL", "DAGSTER_LOCAL_DIR", "DAGSTER_COMPUTE_LOGS_DIR"):  # this process reads the launcher's instance
            monkeypatch.setenv(name, launcher[name])
        with dg.DagsterInstance.from_config(launcher["DAGSTER_HOME"]) as instance:
            instance.add_dynamic_partitions("tenants", [TENANT])

        try:
            node = start_celery_worker(processes, "worker", worker, worker_dir, concurrency=1)
            processes.wait_for("the Celery worker to be ready", lambda: celery_worker_ready(processes, "worker"), 240)

            done = {}
            for kind, job, config in (("archive", "archive_job", None), ("package", "package_job", CLOSE_ALL)):
                done[kind] = dagster_execute(job, TENANT, launcher, launcher_dir, config, tags={"glacier/celery-test": kind})
                assert done[kind].returncode == 0, (
                    f"{job}:\n{done[kind].stdout[-4000:]}\n{done[kind].stderr[-4000:]}\n{processes.logs_tail()}"
                )

            report = catalog_report(launcher, monkeypatch)
            assert {rid: report[rid]["status"] for rid in files} == {rid: "SUCCESS" for rid in files}, report
            assert report["alone"]["storedFileUrl"].startswith(f"s3://{bucket}/archive/{TENANT}/scans/")
            for rid in files:
                if rid != "alone":
                    assert "?member=" in report[rid]["storedFileUrl"], report[rid]
            assert s3.list_objects_v2(Bucket=staging).get("KeyCount") == 0, "staged files are removed once archived"

            # A restore of the file stored alone and of a package member, recorded as `glacier-pipelines restore` does.
            for name, value in launcher.items():
                if name.startswith("GLACIER_"):
                    monkeypatch.setenv(name, value)
            r = resources_from_env()
            setup = r["restore"].setup(r["catalog"], r["archive_store"])
            request = parse_restore_request(
                {
                    "tenant": TENANT,
                    "files": [{"requestId": "alone"}, {"requestId": "small-1"}],
                    "days": 2,
                    "tier": "Standard",
                    "requester": "alice@example.org",
                }
            )
            restore_flow.submit(setup, request)
            done["restore"] = dagster_execute("restore_job", TENANT, launcher, launcher_dir, tags={"glacier/celery-test": "restore"})
            assert done["restore"].returncode == 0, f"{done['restore'].stdout[-4000:]}\n{done['restore'].stderr[-4000:]}"
            restores = restore_flow.report_rows(setup, TENANT)
            assert sorted((row["requestId"], row["status"]) for row in restores) == [("alone", "READY"), ("small-1", "READY")], restores
            assert all(row["downloadUrl"] for row in restores)
            worker_log = processes.log("worker")
        finally:
            processes.stop()

        with dg.DagsterInstance.from_config(launcher["DAGSTER_HOME"]) as instance:
            expected_checks = {
                "archive": {"checksum_integrity", "package_integrity"},
                "package": {"package_integrity"},
                "restore": {"restored_checksum_integrity"},
            }
            stepped, step_count = set(), 0
            for kind in ("archive", "package", "restore"):
                runs = _runs(instance, kind)
                assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS], (kind, runs)
                run = runs[0]
                checks = _checks(instance, run.run_id)
                assert expected_checks[kind] <= set(checks) and all(checks.values()), (kind, checks)
                events = instance.all_logs(run.run_id)
                launcher_pids = {e.dagster_event.pid for e in events if e.dagster_event_type == dg.DagsterEventType.RUN_START}
                step_events = [e for e in events if e.dagster_event_type == dg.DagsterEventType.STEP_SUCCESS]
                assert step_events, kind
                # Every step ran in the worker: the executor says so, naming the worker, and its events come from another process.
                delegated = {
                    e.step_key: e.dagster_event.event_specific_data.metadata["Celery worker"].value.split("@")[0]
                    for e in events
                    if e.dagster_event_type == dg.DagsterEventType.ENGINE_EVENT and e.step_key and "in celery worker" in (e.message or "")
                }
                assert delegated == {e.step_key: node for e in step_events}, (kind, delegated)
                assert launcher_pids and not launcher_pids & {e.dagster_event.pid for e in step_events}, (kind, launcher_pids)
                stepped |= {e.step_key for e in step_events}
                step_count += len(step_events)
        assert {"ingest_batch", "verified_files", "glacier_objects", "glacier_packages", "restore_requests", "restored_files"} <= stepped
        # ... and the worker's own log says it ran them: one succeeded execute_plan task per step.
        assert len(re.findall(r"Task execute_plan\[[0-9a-f-]+\] succeeded", worker_log)) == step_count, worker_log[-3000:]

    # The worker captured its steps' logs in its own folder; the launcher, which ran no step, captured none.
    assert list(Path(worker["DAGSTER_COMPUTE_LOGS_DIR"]).rglob("*.err")), "no step log in the worker's folder"
    assert not list(Path(launcher["DAGSTER_COMPUTE_LOGS_DIR"]).rglob("*.err")), "a step log in the launcher's folder"
    # Staging was the S3 prefix only: neither side staged a byte locally.
    assert not (Path(worker["GLACIER_HOME"]) / "staging").exists() and not (Path(launcher["GLACIER_HOME"]) / "staging").exists()
