"""Shared fixtures: an archive environment on a temporary GLACIER_HOME, moto, a loopback HTTP source."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import pytest
from moto import mock_aws

from glacier_pipelines_tests import static_data

BUCKET = "archive-test"
MiB = 1024 * 1024


def _bytes_for_moto(params: dict[str, Any], **_: Any) -> None:
    """In-process moto only: hand it part bodies as bytes.

    The archive path uploads full parts straight from reused ``bytearray`` buffers, a body type
    botocore supports (and real S3, SeaweedFS and moto server accept), but moto's in-process
    stub passes the body to werkzeug, which takes only bytes. Over HTTP nothing is converted.
    """
    from moto.core.models import botocore_stubber

    if botocore_stubber.enabled and isinstance(params.get("body"), bytearray):
        params["body"] = bytes(params["body"])


import botocore.handlers  # noqa: E402

botocore.handlers.BUILTIN_HANDLERS.append(("before-call.s3.UploadPart", _bytes_for_moto))


static_data.read_once()

# `make` exports DAGSTER_HOME=<repository> for `make demo` and `make ui`. A test that names no instance of its own
# must not write into the repository's .glacier/dagster, which every xdist worker (and the next run) would share:
# without DAGSTER_HOME the CLI uses $GLACIER_HOME/dagster, which the fixtures put under each test's own tmp_path.
os.environ.pop("DAGSTER_HOME", None)


@pytest.fixture(autouse=True)
def _code_location_per_test() -> Any:
    """Each test imports ``glacier_pipelines.definitions`` afresh (0.03 s once its imports are loaded).

    The module builds ``defs`` from the environment when it is imported, and the CLI's ``process`` loads its jobs
    from the module: imported under one test's environment (an S3 endpoint, an AMQP transport), it would serve
    the next test in the same worker with it, so results would depend on which test a worker ran first.
    """
    yield
    sys.modules.pop("glacier_pipelines.definitions", None)


DAGSTER_PROCESS_SLOTS = 2


def _runs_dagster_processes(item: pytest.Item) -> bool:
    """The slow integration tests that start Dagster's daemon, webserver or Celery workers (marked postgres or browser)."""
    return all(item.get_closest_marker(m) for m in ("slow", "integration")) and any(
        item.get_closest_marker(m) for m in ("postgres", "browser")
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest first: the tests that run Dagster's processes, the other slow integration tests (the CLI as a
    subprocess), the other slow ones, then the rest.

    The xdist workers of ``make test`` take tests in this order, so a two-minute test starts at once and the
    short ones fill in around it instead of one starting last.
    """

    def rank(item: pytest.Item) -> int:
        if _runs_dagster_processes(item):
            return 0
        if item.get_closest_marker("slow") is None:
            return 3
        return 1 if item.get_closest_marker("integration") else 2

    items.sort(key=rank)


@pytest.fixture(autouse=True)
def _dagster_process_slot(request: pytest.FixtureRequest) -> Any:
    """Under xdist, at most DAGSTER_PROCESS_SLOTS tests that run Dagster's processes at once, across the workers.

    Each keeps about one CPU busy (code server, daemon, run workers) and two bound their own duration, so a third
    waits here, before its clock starts, while the 2 cores are taken anyway. (``xdist_group`` cannot do this:
    pytest-xdist 3.8 ignores it under pytest 9.2, pytest-xdist#1386.) A lock file per slot, released by the
    kernel if the worker dies.
    """
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None or not _runs_dagster_processes(request.node):
        yield
        return
    import fcntl
    import tempfile

    folder = Path(tempfile.gettempdir()) / f"glacier-test-slots-{run}"
    folder.mkdir(exist_ok=True)
    handles = [open(folder / f"slot-{n}", "a+") for n in range(DAGSTER_PROCESS_SLOTS)]  # noqa: SIM115
    held = None
    try:
        while held is None:
            for handle in handles:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                held = handle
                break
            else:
                time.sleep(0.5)
        yield
    finally:
        for handle in handles:
            handle.close()  # closing releases the lock


def require_services() -> bool:
    return os.environ.get("GLACIER_REQUIRE_SERVICES") == "1"


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


class _Handler(http.server.BaseHTTPRequestHandler):
    root: Path
    slow_seconds = 3.0

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "10")
            self.end_headers()
            time.sleep(self.slow_seconds)
            return
        if self.path == "/truncated":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            return
        path = self.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def http_source(tmp_path: Path):
    """A loopback HTTP server over ``tmp_path/http`` plus /slow and /truncated endpoints."""
    root = tmp_path / "http"
    root.mkdir()
    handler = type("Handler", (_Handler,), {"root": root})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class Archive:
    """A GLACIER_HOME in tmp, env vars set, helpers to submit requests and run archive_job."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage_class: str = "DEEP_ARCHIVE"):
        self.home = tmp_path / "home"
        self.sources = tmp_path / "sources"
        self.sources.mkdir()
        self.storage_class = storage_class
        env = {
            "GLACIER_HOME": str(self.home),
            "GLACIER_BUCKET": BUCKET,
            "GLACIER_STORAGE_CLASS": storage_class,
            "GLACIER_KEY_PREFIX": "archive",
            "GLACIER_SOURCE_ROOTS": str(self.sources),
            "GLACIER_SOURCE_ALLOWED_NETWORKS": "127.0.0.0/8",
            "GLACIER_SOURCE_TIMEOUT": "1",
            "GLACIER_PART_SIZE_MB": "5",
            "GLACIER_MULTIPART_THRESHOLD_MB": "5",
            "GLACIER_UPLOAD_CONCURRENCY": "2",
            "GLACIER_REQUEST_TRANSPORT": "embedded",
        }
        for name in ("GLACIER_CATALOG_URL", "GLACIER_S3_ENDPOINT_URL", "GLACIER_SSE", "GLACIER_TENANTS", "GLACIER_BATCH_SIZE"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        self.counter = 0

    # -- sources and requests --------------------------------------------------------------
    def file(self, name: str, data: bytes) -> str:
        path = self.sources / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path.as_uri()

    def request(self, tenant: str, url: str, data: bytes | None, algorithm: str = "MD5", **fields: Any) -> dict[str, Any]:
        self.counter += 1
        h = {"MD5": hashlib.md5, "SHA-1": hashlib.sha1, "SHA-256": hashlib.sha256, "SHA-512": hashlib.sha512}[algorithm]
        req = {
            "tenant": tenant,
            "requestId": fields.pop("requestId", f"req-{self.counter:04d}"),
            "checksum": h(data if data is not None else b"").hexdigest(),
            "algorithm": algorithm,
            "url": url,
            "destinationDirectory": "dir",
        }
        req.update(fields)
        return req

    def transport(self):
        from glacier_pipelines.resources import resources_from_env

        return resources_from_env()["request_transport"].transport()

    def catalog(self):
        from glacier_pipelines.resources import resources_from_env

        return resources_from_env()["catalog"].get()

    def submit(self, *requests: dict[str, Any]) -> None:
        from glacier_pipelines.core.transport import submission_to_message
        from glacier_pipelines.flows import intake

        transport = self.transport()
        for req in requests:
            transport.publish_request(*submission_to_message(req))
        intake.drain_requests(transport, self.catalog())

    # -- Dagster ---------------------------------------------------------------------------
    def defs(self, **resource_overrides: Any) -> dg.Definitions:
        from glacier_pipelines.definitions import build_defs
        from glacier_pipelines.resources import resources_from_env

        return build_defs({**resources_from_env(), **resource_overrides})

    def run(self, tenant: str, instance: dg.DagsterInstance, **resource_overrides: Any) -> dg.ExecuteInProcessResult:
        if not instance.has_dynamic_partition("tenants", tenant):
            instance.add_dynamic_partitions("tenants", [tenant])
        job = self.defs(**resource_overrides).resolve_job_def("archive_job")
        return job.execute_in_process(partition_key=tenant, instance=instance, raise_on_error=False)

    def report(self, tenant: str | None = None) -> dict[str, dict[str, Any]]:
        return {r["requestId"]: r for r in self.catalog().report(tenant)}


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_credentials: None):
    """An Archive on in-process moto with the bucket created."""
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield Archive(tmp_path, monkeypatch)


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def s3_client():
    return boto3.client("s3", region_name="us-east-1")


def image_bytes(fmt: str, size: tuple[int, int]) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buf, fmt)
    return buf.getvalue()


def archived_keys(s3: Any = None) -> list[str]:
    """The bucket's keys that hold archived bytes or manifests: the request ledger (core/ledger.py) is left out."""
    from glacier_pipelines.core.ledger import is_ledger_key

    listing = (s3 or s3_client()).list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return sorted(o["Key"] for o in listing if not is_ledger_key(o["Key"]))


def materializations(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    return {
        ev.asset_key.to_user_string(): {k: v.value for k, v in ev.materialization.metadata.items()}
        for ev in result.get_asset_materialization_events()
    }


def responses_of(archive: Archive) -> dict[str, dict[str, Any]]:
    from glacier_pipelines.flows import intake

    transport = archive.transport()
    intake.publish_responses(transport, archive.catalog(), worker_id="test-worker")
    return {json.loads(m.body)["requestId"]: {"headers": m.headers, **json.loads(m.body)} for m in transport.read_responses(10_000)}


class _Mailbox:
    def __init__(self):
        self.messages: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's handler name)
        self.messages.append(envelope.content.decode("utf-8", "replace"))
        return "250 OK"


@pytest.fixture
def smtp_server(monkeypatch):
    """A real SMTP server on loopback (aiosmtpd) that keeps what it receives; GLACIER_SMTP_* point at it."""
    from aiosmtpd.controller import Controller

    from glacier_pipelines.emulator import free_port

    mailbox = _Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("GLACIER_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("GLACIER_SMTP_PORT", str(port))
    monkeypatch.setenv("GLACIER_SMTP_FROM", "archive@example.org")
    yield mailbox
    controller.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def catalog_backend(request, archive, monkeypatch):
    """The archive fixture's catalog on SQLite, then on a fresh PostgreSQL database (modules using it import postgres_url)."""
    if request.param == "postgresql":
        monkeypatch.setenv("GLACIER_CATALOG_URL", request.getfixturevalue("postgres_url"))
    return request.param
