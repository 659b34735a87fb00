"""The production configuration, run for real: deploy/dagster.yaml on PostgreSQL, a gRPC code server,
``dagster-daemon run`` over deploy/workspace.yaml, requests over RabbitMQ, S3 on a moto server.

Only the values that name this machine differ from the README's "Running in production": the
database, the ports and the queue names are unique to this run, and sensors tick every 3 s
(GLACIER_SENSOR_INTERVAL_SECONDS) instead of 30 s so the test stays short.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pika
import pytest
import yaml

from glacier_pipelines.core.amqp import AmqpSettings, AmqpTransport, redact_amqp_url
from glacier_pipelines.emulator import free_port, moto_server
from glacier_pipelines_tests.conftest import require_services

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.amqp, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
AMQP_URL = os.environ.get("GLACIER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
TENANTS = {"lab": 2, "museum": 3, "observatory": 2}  # requests per tenant; GLACIER_BATCH_SIZE=2 gives 1, 2 and 1 runs
PER_TENANT_LIMIT = next(
    limit["limit"]
    for limit in yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())["concurrency"]["runs"]["tag_concurrency_limits"]
    if limit["key"] == "dagster/partition"
)
WAIT_SECONDS = 240


@pytest.fixture
def amqp_names():
    """Unique queue names on the real broker, deleted afterwards."""
    try:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    except pika.exceptions.AMQPError as exc:
        if require_services() or os.environ.get("GLACIER_REQUIRE_BROKER") == "1":
            pytest.fail(f"RabbitMQ is required but unreachable at {redact_amqp_url(AMQP_URL)}: {exc!r}")
        pytest.skip(f"RabbitMQ NOT reachable at {redact_amqp_url(AMQP_URL)}: production test skipped ({exc!r})")
    suffix = uuid.uuid4().hex[:10]
    names = {
        "GLACIER_REQUEST_QUEUE": f"prod.{suffix}.requests",
        "GLACIER_RESPONSE_ROUTING_KEY": f"prod.{suffix}.responses",
        "GLACIER_DEAD_LETTER_QUEUE": f"prod.{suffix}.dlq",
    }
    connection.close()  # an idle connection would miss its heartbeats during the test
    yield names
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    for queue in names.values():
        channel.queue_delete(queue=queue)
    connection.close()


class Services:
    """Subprocesses in their own process groups, stopped (group and all) at the end, whatever happened."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")
        proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for proc in self.procs.values():  # run workers may outlive their parent in the group
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _wait_for(what: str, ready, timeout: float, services: Services, watched: list[str]) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        for name in watched:
            if services.procs[name].poll() is not None:
                pytest.fail(f"{name} exited with {services.procs[name].returncode} while waiting for {what}:\n{services.log(name)[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not within {timeout:.0f} s:\n" + "\n".join(f"--- {n}\n{services.log(n)[-3000:]}" for n in watched))
        time.sleep(1)


def test_production_configuration_under_the_daemon(tmp_path, postgres_url, amqp_names, monkeypatch):
    import dagster as dg
    import sqlalchemy as sa

    started = time.monotonic()
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")  # the file itself, unchanged
    sources = tmp_path / "sources"
    sources.mkdir()
    bucket = f"prod-{uuid.uuid4().hex[:8]}"
    code_port = free_port()
    services = Services(tmp_path)
    with moto_server() as endpoint:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GLACIER_", "DAGSTER_", "AWS_"))}
        env.update(amqp_names)
        env.update(
            {
                "DAGSTER_HOME": str(dagster_home),
                "DAGSTER_PG_URL": postgres_url,
                "DAGSTER_CODE_SERVER_HOST": "127.0.0.1",
                "DAGSTER_CODE_SERVER_PORT": str(code_port),
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
                "GLACIER_HOME": str(tmp_path / "glacier_home"),
                "GLACIER_CATALOG_URL": postgres_url,
                "GLACIER_S3_ENDPOINT_URL": endpoint,
                "GLACIER_BUCKET": bucket,
                "GLACIER_STORAGE_CLASS": "DEEP_ARCHIVE",
                "GLACIER_SOURCE_ROOTS": str(sources),
                "GLACIER_REQUEST_TRANSPORT": "amqp",
                "GLACIER_AMQP_URL": AMQP_URL,
                "GLACIER_BATCH_SIZE": "2",
                "GLACIER_SENSORS_RUNNING": "1",
                "GLACIER_SENSOR_INTERVAL_SECONDS": "3",
                "GLACIER_EXECUTOR": "in_process",
            }
        )
        boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        ).create_bucket(Bucket=bucket)
        requests = []
        for tenant, count in TENANTS.items():
            for i in range(count):
                data = f"{tenant} file {i} ".encode() * (i + 1)
                path = sources / tenant / f"f{i}.txt"
                path.parent.mkdir(exist_ok=True)
                path.write_bytes(data)
                requests.append(
                    {
                        "tenant": tenant,
                        "requestId": f"{tenant}-{i}",
                        "checksum": hashlib.md5(data).hexdigest(),
                        "algorithm": "MD5",
                        "url": path.as_uri(),
                        "destinationDirectory": "prod",
                    }
                )
        (tmp_path / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in requests))
        try:
            services.start(
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
            )

            def code_server_answers() -> bool:
                probe = subprocess.run(
                    [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(code_port), "-h", "127.0.0.1"],
                    env=env,
                    capture_output=True,
                    timeout=60,
                )
                return probe.returncode == 0

            _wait_for("the code server", code_server_answers, 90, services, ["code-server"])
            services.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(ROOT / "deploy" / "workspace.yaml")], env)
            submitted = subprocess.run(
                [str(BIN / "glacier-pipelines"), "submit", str(tmp_path / "requests.jsonl")],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert submitted.returncode == 0, submitted.stdout + submitted.stderr

            settings = AmqpSettings(
                url=AMQP_URL,
                request_queue=amqp_names["GLACIER_REQUEST_QUEUE"],
                response_routing_key=amqp_names["GLACIER_RESPONSE_ROUTING_KEY"],
                dead_letter_queue=amqp_names["GLACIER_DEAD_LETTER_QUEUE"],
            )
            responses: dict[str, dict] = {}

            def every_request_answered() -> bool:
                with AmqpTransport(settings) as transport:
                    for message in transport.read_responses(1000):
                        body = json.loads(message.body)
                        assert body["requestId"] not in responses, f"two responses for {body['requestId']}"
                        responses[body["requestId"]] = body
                return len(responses) == len(requests)

            _wait_for("a terminal response to every request", every_request_answered, WAIT_SECONDS, services, ["code-server", "daemon"])
            # Two more runs of one tenant, submitted at the same moment through the same queue: the per-tenant
            # limit must hold the second until the first has ended (the sensor alone rarely overlaps a tenant's runs).
            probes = [
                subprocess.Popen(
                    [
                        str(BIN / "dagster"),
                        "job",
                        "launch",
                        "-j",
                        "archive_job",
                        "-w",
                        str(ROOT / "deploy" / "workspace.yaml"),
                        "--tags",
                        json.dumps({"dagster/partition": "lab", "glacier/queue-probe": str(n)}),
                    ],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                for n in range(2)
            ]
            for probe in probes:
                out, _ = probe.communicate(timeout=180)
                assert probe.returncode == 0, out
            monkeypatch.setenv("DAGSTER_PG_URL", postgres_url)  # the instance is read by this test process too
            with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
                unfinished = dg.RunsFilter(
                    statuses=[
                        dg.DagsterRunStatus.QUEUED,
                        dg.DagsterRunStatus.NOT_STARTED,
                        dg.DagsterRunStatus.STARTING,
                        dg.DagsterRunStatus.STARTED,
                    ]
                )
                _wait_for("every run to finish", lambda: not instance.get_runs_count(unfinished), 60, services, ["code-server", "daemon"])
        finally:
            services.stop()

    assert {rid: r["status"] for rid, r in responses.items()} == {r["requestId"]: "SUCCESS" for r in requests}
    assert "request_intake_sensor stays off" in services.log("code-server")  # transport is amqp: it says why it is off

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        records = instance.get_run_records(dg.RunsFilter(job_name="archive_job"))
        assert records, "no archive_job run"
        by_tenant: dict[str, list] = {}
        for record in records:
            run = record.dagster_run
            # launched by the daemon: requested by the sensor (or the two queue probes), then queued and dequeued
            assert run.tags.get("dagster/sensor_name") == "amqp_bridge_sensor" or "glacier/queue-probe" in run.tags, run.tags
            if run.status != dg.DagsterRunStatus.SUCCESS:
                errors = [e.message for e in instance.all_logs(run.run_id) if e.is_dagster_event and e.dagster_event.is_failure]
                pytest.fail(f"run {run.run_id} ({run.tags.get('dagster/partition')}) ended {run.status}: {errors}")
            # went through the queue: enqueued by the run coordinator, then dequeued (RUN_STARTING) by the daemon
            lifecycle = [
                e.dagster_event_type
                for e in instance.all_logs(run.run_id)
                if e.dagster_event_type
                in (dg.DagsterEventType.RUN_ENQUEUED, dg.DagsterEventType.RUN_STARTING, dg.DagsterEventType.RUN_START)
            ]
            assert lifecycle == [dg.DagsterEventType.RUN_ENQUEUED, dg.DagsterEventType.RUN_STARTING, dg.DagsterEventType.RUN_START], (
                run.run_id,
                lifecycle,
            )
            assert record.start_time and record.end_time
            enqueued = next(e.timestamp for e in instance.all_logs(run.run_id) if e.dagster_event_type == dg.DagsterEventType.RUN_ENQUEUED)
            by_tenant.setdefault(run.tags["dagster/partition"], []).append((record.start_time, record.end_time, enqueued))
        assert set(by_tenant) == set(TENANTS)
        held = [
            tenant for tenant, spans in by_tenant.items() if any(q < end and start >= end for _, end, _ in spans for start, _, q in spans)
        ]
        assert held, "no run waited in the queue behind a run of its tenant: the per-tenant limit was never exercised"
        for tenant, spans in by_tenant.items():
            points = sorted([(s, 1) for s, _, _ in spans] + [(e, -1) for _, e, _ in spans], key=lambda p: (p[0], p[1]))
            running = peak = 0
            for _, delta in points:
                running += delta
                peak = max(peak, running)
            assert peak <= PER_TENANT_LIMIT, f"{tenant}: {peak} runs at once"
        pool = instance.event_log_storage.get_concurrency_info("s3_uploads")
        assert pool.slot_count == 2  # concurrency.pools.default_limit applied to the glacier_objects pool

    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            lineage = conn.execute(
                sa.text("SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key LIKE :key"),
                {"key": '%"glacier_objects"%'},
            ).scalar_one()
            stored = conn.execute(sa.text("SELECT count(*) FROM objects")).scalar_one()
    finally:
        engine.dispose()
    assert lineage == len(records)  # one materialization of glacier_objects per archive run, in PostgreSQL
    assert stored == len(requests)  # and the catalog, in the same database, holds every object
    assert time.monotonic() - started < WAIT_SECONDS + 60
