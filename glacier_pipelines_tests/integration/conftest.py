from __future__ import annotations

import os
import uuid

import pytest

from glacier_pipelines_tests.conftest import require_services

DEFAULT_POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    import sqlalchemy as sa

    base = os.environ.get("GLACIER_TEST_POSTGRES_URL", DEFAULT_POSTGRES)
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    name = f"glacier_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        if require_services():
            pytest.fail(f"PostgreSQL is required (GLACIER_REQUIRE_SERVICES=1) but unreachable at {base}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {base}; set GLACIER_TEST_POSTGRES_URL to run this test")
    url = sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)
    yield url
    from glacier_pipelines.resources.archive import _catalogs

    if url in _catalogs:
        _catalogs.pop(url).dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# -- Dagster as separate processes (daemon, code server, webserver) over a moto server ---------------------


def archive_env(tmp_path, endpoint: str, bucket: str, **extra: str) -> dict[str, str]:
    """The environment of Dagster processes that archive into ``bucket`` on the moto server at ``endpoint``.

    Inherited GLACIER_*, DAGSTER_* and AWS_* variables are dropped, so nothing of this machine's own setup
    leaks in. Sensors stay off unless ``extra`` turns them on: runs come only from what the test launches.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GLACIER_", "DAGSTER_", "AWS_"))}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "GLACIER_HOME": str(tmp_path / "glacier_home"),
            "GLACIER_S3_ENDPOINT_URL": endpoint,
            "GLACIER_BUCKET": bucket,
            "GLACIER_STORAGE_CLASS": "DEEP_ARCHIVE",
            "GLACIER_KEY_PREFIX": "archive",
            "GLACIER_SOURCE_ROOTS": str(tmp_path / "sources"),
            "GLACIER_REQUEST_TRANSPORT": "embedded",
            "GLACIER_EXECUTOR": "in_process",
        }
    )
    env.update(extra)
    return env


def write_requests(sources, tenants: dict[str, int], prefix: str = "") -> list[dict]:
    """``count`` small source files per tenant under ``sources`` and one storage request for each (MD5 announced)."""
    import hashlib

    requests = []
    for tenant, count in tenants.items():
        for i in range(count):
            data = f"{tenant} scan {i} ".encode() * (200 * (i + 1))
            path = sources / tenant / f"scan-{i:04d}.tif"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            requests.append(
                {
                    "tenant": tenant,
                    "requestId": f"{prefix}{tenant}-{i}",
                    "checksum": hashlib.md5(data).hexdigest(),
                    "algorithm": "MD5",
                    "url": path.as_uri(),
                    "destinationDirectory": "scans",
                    "owner": "alice",
                    "session": "s-2026",
                }
            )
    return requests


def persist_requests(env: dict[str, str], requests: list[dict], monkeypatch) -> None:
    """Put ``requests`` on the embedded transport and persist them in the catalog, as request_intake_sensor's tick does.

    The sensor itself stays off in these tests so that every run comes from what the test launches.
    """
    from glacier_pipelines.core.transport import submission_to_message
    from glacier_pipelines.flows import intake
    from glacier_pipelines.resources import resources_from_env

    for name, value in env.items():
        if name.startswith("GLACIER_"):
            monkeypatch.setenv(name, value)
    resources = resources_from_env()
    transport = resources["request_transport"].transport()
    for request in requests:
        transport.publish_request(*submission_to_message(request))
    result = intake.drain_requests(transport, resources["catalog"].get())
    assert (result.received, result.invalid) == (len(requests), 0), result


def catalog_report(env: dict[str, str], monkeypatch) -> dict[str, dict]:
    """``catalog.report()`` of the catalog that ``env`` names, by request id."""
    from glacier_pipelines.resources import resources_from_env

    for name, value in env.items():
        if name.startswith("GLACIER_"):
            monkeypatch.setenv(name, value)
    return {r["requestId"]: r for r in resources_from_env()["catalog"].get().report()}


class Processes:
    """Subprocesses in their own process groups, with default signal handling, stopped group and all at the end."""

    def __init__(self, logs):
        self.logs = logs
        self.procs: dict = {}

    def start(self, name: str, args: list[str], env: dict[str, str], cwd) -> None:
        import subprocess

        with open(self.logs / f"{name}.log", "wb") as log:
            self.procs[name] = subprocess.Popen(args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def logs_tail(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {name}\n{self.log(name)[-chars:]}" for name in self.procs)

    def check_alive(self, what: str) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode} while waiting for {what}:\n{self.log(name)[-4000:]}")

    def wait_for(self, what: str, ready, timeout: float, interval: float = 1.0) -> None:
        import time

        deadline = time.monotonic() + timeout
        while not ready():
            self.check_alive(what)
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: not within {timeout:.0f} s\n{self.logs_tail()}")
            time.sleep(interval)

    def stop(self, first_signal=None) -> None:
        """SIGINT (dagster dev shuts its children down on it) or SIGTERM, then SIGKILL for whatever is left in the group."""
        import signal
        import subprocess

        first_signal = first_signal or signal.SIGTERM
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                os.killpg(proc.pid, first_signal)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for proc in self.procs.values():  # run workers and code servers may outlive their parent in the group
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# -- Celery over RabbitMQ (dagster-celery's executor and workers) ------------------------------------------

AMQP_HOST = "127.0.0.1:5672"


class CeleryBroker:
    """A RabbitMQ vhost of its own (``rabbitmqctl add_vhost``), so no other test or session sees its queues."""

    def __init__(self):
        import shutil
        import subprocess

        self.vhost = f"glacier-celery-{uuid.uuid4().hex[:8]}"
        self.url = f"pyamqp://guest:guest@{AMQP_HOST}/{self.vhost}"
        ctl = shutil.which("rabbitmqctl")
        problem = None
        if ctl is None:
            problem = "rabbitmqctl not found"
        else:
            try:
                subprocess.run([ctl, "add_vhost", self.vhost], check=True, capture_output=True, timeout=120)
                subprocess.run(
                    [ctl, "set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*"], check=True, capture_output=True, timeout=120
                )
            except (subprocess.SubprocessError, OSError) as exc:
                problem = f"{exc!r} {getattr(exc, 'stderr', b'') or b''!r}"
        if problem is not None:
            if require_services():
                pytest.fail(f"RabbitMQ is required (GLACIER_REQUIRE_SERVICES=1) but no vhost could be made: {problem}")
            pytest.skip(f"RabbitMQ vhost for Celery not available: {problem}")
        self._ctl = ctl

    def delete(self) -> None:
        import subprocess

        subprocess.run([self._ctl, "delete_vhost", self.vhost], capture_output=True, timeout=120)


@pytest.fixture
def celery_broker():
    """A fresh RabbitMQ vhost for one test's Celery broker (guest may use it), deleted afterwards."""
    broker = CeleryBroker()
    try:
        yield broker
    finally:
        broker.delete()


CELERY_INSTANCE_EXTRA = """
# Each process writes its step logs and local artifacts under its own folder: a step run by a Celery
# worker gets the launcher's instance settings, and without `env:` here it would write to the
# launcher's paths on the worker's machine.
local_artifact_storage:
  module: dagster._core.storage.root
  class: LocalArtifactStorage
  config:
    base_dir:
      env: DAGSTER_LOCAL_DIR
compute_logs:
  module: dagster._core.storage.local_compute_log_manager
  class: LocalComputeLogManager
  config:
    base_dir:
      env: DAGSTER_COMPUTE_LOGS_DIR
"""


def celery_side(root, name: str, base_env: dict[str, str], broker_url: str, **extra: str) -> tuple[dict[str, str], object]:
    """The environment and working folder of one side (launcher or worker): its own cwd, GLACIER_HOME and DAGSTER_HOME.

    Both read deploy/dagster.yaml (PostgreSQL from DAGSTER_PG_URL) plus the per-process folders above, and
    run every job with GLACIER_EXECUTOR=celery and deploy/executors/celery_executor.yaml.
    """
    from pathlib import Path

    root_dir = Path(__file__).resolve().parents[2]
    side = Path(root) / name
    home = side / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text((root_dir / "deploy" / "dagster.yaml").read_text() + CELERY_INSTANCE_EXTRA)
    bin_dir = str(Path(__import__("sys").executable).parent)
    env = {
        **base_env,
        "GLACIER_HOME": str(side / "glacier_home"),
        "DAGSTER_HOME": str(home),
        "DAGSTER_LOCAL_DIR": str(side / "dagster_local"),
        "DAGSTER_COMPUTE_LOGS_DIR": str(side / "dagster_local" / "logs"),
        "GLACIER_EXECUTOR": "celery",
        "GLACIER_EXECUTOR_CONFIG": str(root_dir / "deploy" / "executors" / "celery_executor.yaml"),
        "DAGSTER_CELERY_BROKER_URL": broker_url,
        "PATH": f"{bin_dir}:{base_env.get('PATH', os.defpath)}",
        **extra,
    }
    return env, side


def start_celery_worker(processes: Processes, name: str, env: dict[str, str], cwd, concurrency: int = 1) -> str:
    """``dagster-celery worker start`` as the README tells an operator; returns the worker's name (dagster-celery adds @host)."""
    import sys
    from pathlib import Path

    root_dir = Path(__file__).resolve().parents[2]
    node = f"{name}-{uuid.uuid4().hex[:6]}"
    processes.start(
        name,
        [
            str(Path(sys.executable).parent / "dagster-celery"),
            "worker",
            "start",
            "-A",
            "dagster_celery.app",
            "-y",
            str(root_dir / "deploy" / "executors" / "celery_executor.yaml"),
            "-n",
            node,
            "-l",
            "info",
            "--",
            f"--concurrency={concurrency}",
            "--without-gossip",
            "--without-mingle",
        ],
        env,
        cwd,
    )
    return node


def celery_worker_ready(processes: Processes, name: str) -> bool:
    return " ready." in processes.log(name)


def dagster_execute(job: str, tenant: str, env: dict[str, str], cwd, run_config=None, tags=None, timeout: float = 600):
    """``dagster job execute -m glacier_pipelines.definitions -j JOB --tags '{"dagster/partition": TENANT}'``."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    args = [
        str(Path(sys.executable).parent / "dagster"),
        "job",
        "execute",
        "-m",
        "glacier_pipelines.definitions",
        "-j",
        job,
        "--tags",
        json.dumps({"dagster/partition": tenant, **(tags or {})}),
    ]
    if run_config is not None:
        config = Path(cwd) / f"{job}-{uuid.uuid4().hex[:6]}.yaml"
        config.write_text(json.dumps(run_config))  # JSON is YAML
        args += ["-c", str(config)]
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
