"""An asset backfill over several tenant partitions, launched from the command line and run by the Dagster daemon.

The production shape, as in test_production.py: deploy/dagster.yaml unchanged (PostgreSQL run, event-log and
schedule storage, the run queue), a gRPC code server, ``dagster-daemon run`` over deploy/workspace.yaml, S3 on
a moto server and the catalog in the same fresh PostgreSQL database. Sensors stay off: every run comes from the
backfill. The backfill is launched the way the README's "Backfills" tells an operator to, with the
``dagster-graphql`` command and the ``launchPartitionBackfill`` mutation (this Dagster has no
``dagster asset backfill``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import boto3
import pytest

from glacier_pipelines.emulator import free_port, moto_server
from glacier_pipelines_tests.integration.conftest import Processes, archive_env, catalog_report, persist_requests, write_requests

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(900)]  # its own waits bound it first

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ARCHIVE_ASSETS = ["ingest_batch", "verified_files", "glacier_objects", "glacier_packages"]
BACKFILLED = {"lab": 3, "museum": 2}  # pending requests per tenant in the backfill
BYSTANDER = {"observatory": 1}  # a tenant with pending work that the backfill does not name
WAIT_SECONDS = 420

LAUNCH = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on PartitionKeysNotFoundError { message }
    ... on InvalidSubsetError { message }
  }
}
"""


def test_an_asset_backfill_of_two_tenants_under_the_daemon_on_postgresql(tmp_path, postgres_url, monkeypatch):
    import dagster as dg
    from dagster._core.execution.backfill import BulkActionStatus

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")  # PostgreSQL storage and the run queue, unchanged
    bucket = f"backfill-{uuid.uuid4().hex[:8]}"
    code_port = free_port()
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
        )
        s3 = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        s3.create_bucket(Bucket=bucket)
        requests = write_requests(tmp_path / "sources", {**BACKFILLED, **BYSTANDER}, prefix="bf-")
        persist_requests(env, requests, monkeypatch)
        monkeypatch.setenv("DAGSTER_PG_URL", postgres_url)  # this process reads the same instance
        with dg.DagsterInstance.from_config(str(home)) as instance:
            # The intake sensor adds a tenant as a partition when its first request arrives; it is off here.
            instance.add_dynamic_partitions("tenants", [*BACKFILLED, *BYSTANDER])
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
                env,
                ROOT,
            )

            def code_server_answers() -> bool:
                probe = subprocess.run(
                    [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(code_port), "-h", "127.0.0.1"],
                    env=env,
                    capture_output=True,
                    timeout=60,
                )
                return probe.returncode == 0

            processes.wait_for("the code server", code_server_answers, 120)
            processes.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(ROOT / "deploy" / "workspace.yaml")], env, ROOT)

            # What an operator types (README, "Backfills"): the four archive assets, two tenants.
            variables = {
                "params": {
                    "assetSelection": [{"path": [name]} for name in ARCHIVE_ASSETS],
                    "partitionNames": sorted(BACKFILLED),
                    "title": "backfill test",
                }
            }
            answer = tmp_path / "launch.json"
            launched = subprocess.run(
                [
                    str(BIN / "dagster-graphql"),
                    "-w",
                    str(ROOT / "deploy" / "workspace.yaml"),
                    "-t",
                    LAUNCH,
                    "-v",
                    json.dumps(variables),
                    "-o",
                    str(answer),
                ],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert launched.returncode == 0, launched.stdout + launched.stderr
            result = json.loads(answer.read_text())["data"]["launchPartitionBackfill"]
            assert result["__typename"] == "LaunchBackfillSuccess", result
            backfill_id = result["backfillId"]

            with dg.DagsterInstance.from_config(str(home)) as instance:
                unfinished = dg.RunsFilter(
                    statuses=[
                        dg.DagsterRunStatus.QUEUED,
                        dg.DagsterRunStatus.NOT_STARTED,
                        dg.DagsterRunStatus.STARTING,
                        dg.DagsterRunStatus.STARTED,
                    ]
                )

                def backfill_over() -> bool:
                    backfill = instance.get_backfill(backfill_id)
                    return backfill.status not in (BulkActionStatus.REQUESTED, BulkActionStatus.CANCELING) and not instance.get_runs_count(
                        unfinished
                    )

                processes.wait_for(f"backfill {backfill_id} to finish", backfill_over, WAIT_SECONDS, interval=2)
                backfill = instance.get_backfill(backfill_id)
                records = instance.get_run_records(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
                runs = [record.dagster_run for record in records]
                failures = {
                    run.run_id: [e.message for e in instance.all_logs(run.run_id) if e.is_dagster_event and e.dagster_event.is_failure]
                    for run in runs
                    if run.status != dg.DagsterRunStatus.SUCCESS
                }
                assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS, (backfill.status, backfill.error, failures)
                assert not failures, failures
                # One run per tenant partition, each with the four assets, nothing for the tenant not named.
                assert Counter(run.tags.get("dagster/partition") for run in runs) == {tenant: 1 for tenant in BACKFILLED}, [
                    (run.run_id, run.tags.get("dagster/partition"), sorted(k.to_user_string() for k in run.asset_selection or ()))
                    for run in runs
                ]
                assert instance.get_runs_count(dg.RunsFilter(tags={"dagster/partition": "observatory"})) == 0
                for run in runs:
                    events = instance.all_logs(run.run_id)
                    lifecycle = [
                        e.dagster_event_type
                        for e in events
                        if e.dagster_event_type
                        in (dg.DagsterEventType.RUN_ENQUEUED, dg.DagsterEventType.RUN_STARTING, dg.DagsterEventType.RUN_SUCCESS)
                    ]
                    # submitted by the daemon's backfill loop to the queue, dequeued and launched by the daemon
                    assert lifecycle == [
                        dg.DagsterEventType.RUN_ENQUEUED,
                        dg.DagsterEventType.RUN_STARTING,
                        dg.DagsterEventType.RUN_SUCCESS,
                    ], (run.run_id, lifecycle)
                    materialized = {
                        e.dagster_event.asset_key.to_user_string()
                        for e in events
                        if e.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
                    }
                    assert materialized == set(ARCHIVE_ASSETS), (run.tags.get("dagster/partition"), materialized)
                    checks = {
                        e.dagster_event.event_specific_data.check_name: e.dagster_event.event_specific_data.passed
                        for e in events
                        if e.dagster_event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
                    }
                    assert checks.get("checksum_integrity") is True, (run.tags.get("dagster/partition"), checks)
                    assert all(checks.values()), checks
        finally:
            processes.stop()

        report = catalog_report(env, monkeypatch)
        backfilled = [r for r in requests if r["tenant"] in BACKFILLED]
        assert {r["requestId"]: report[r["requestId"]]["status"] for r in backfilled} == {r["requestId"]: "SUCCESS" for r in backfilled}
        bystanders = [r["requestId"] for r in requests if r["tenant"] in BYSTANDER]
        assert [report[rid]["status"] for rid in bystanders] == ["PENDING"] * len(bystanders)
        for request in backfilled:  # each answer names an object that S3 holds, in the archive class
            url = report[request["requestId"]]["storedFileUrl"]
            assert url.startswith(f"s3://{bucket}/archive/{request['tenant']}/"), url
            head = s3.head_object(Bucket=bucket, Key=url.split("/", 3)[3])
            assert head["StorageClass"] == "DEEP_ARCHIVE"
