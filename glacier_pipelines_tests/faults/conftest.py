"""Fixtures of the fault-injection tests: moto in server mode, an archive environment on it, the reliability record.

With ``GLACIER_RELIABILITY_REPORT=path.jsonl`` set, every test appends what it injected and
what it counted (one JSON line per fault) for ``bench/reliability.py`` to tabulate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from glacier_pipelines.emulator import moto_server
from glacier_pipelines_tests.faults import invariants
from glacier_pipelines_tests.integration.conftest import postgres_url  # noqa: F401  (the fixture, for the PostgreSQL catalog test)

MiB = 1024 * 1024
REPORT_ENV = "GLACIER_RELIABILITY_REPORT"


@pytest.fixture(scope="session")
def moto_endpoint():
    with moto_server() as url:
        yield url


def direct_client(endpoint: str) -> Any:
    """A plain client straight to the emulator, for setting up and for reading back (no faults)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "max_attempts": 3}),
    )


class FaultEnv:
    """A GLACIER_HOME in tmp with its own bucket on the moto server, and the archive steps run without Dagster."""

    tenant = "lab"

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, endpoint: str):
        self.tmp_path = tmp_path
        self.monkeypatch = monkeypatch
        self.endpoint = endpoint
        self.home = tmp_path / "home"
        self.sources = tmp_path / "sources"
        self.sources.mkdir()
        self.bucket = f"faults-{uuid.uuid4().hex[:12]}"
        self.key_prefix = "archive"
        self.rng = random.Random(7)
        env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "GLACIER_HOME": str(self.home),
            "GLACIER_BUCKET": self.bucket,
            "GLACIER_STORAGE_CLASS": "STANDARD",
            "GLACIER_KEY_PREFIX": self.key_prefix,
            "GLACIER_SOURCE_ROOTS": str(self.sources),
            "GLACIER_SOURCE_ALLOWED_NETWORKS": "127.0.0.0/8",
            "GLACIER_SOURCE_TIMEOUT": "5",
            "GLACIER_PART_SIZE_MB": "5",
            "GLACIER_MULTIPART_THRESHOLD_MB": "5",
            "GLACIER_UPLOAD_CONCURRENCY": "2",
            "GLACIER_REQUEST_TRANSPORT": "embedded",
            "GLACIER_S3_ENDPOINT_URL": endpoint,
        }
        for name in [n for n in os.environ if n.startswith(("GLACIER_", "DAGSTER_"))] + [
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_S3",
        ]:
            if name != REPORT_ENV:
                monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        self.s3 = direct_client(endpoint)
        self.s3.create_bucket(Bucket=self.bucket)
        self.submitted: list[invariants.Submitted] = []
        self.abandoned: list[tuple[str, str]] = []  # uploads a failed attempt left open (seen before the clean-up could run)

    # -- data and requests -------------------------------------------------------------------
    def data(self, size: int) -> bytes:
        return self.rng.randbytes(size)

    def file(self, name: str, data: bytes) -> str:
        path = self.sources / name
        path.write_bytes(data)
        return path.as_uri()

    def request(
        self,
        request_id: str,
        url: str,
        data: bytes,
        *,
        announce: bytes | None = None,
        expect: str | None = "SUCCESS",
        tenant: str | None = None,
    ) -> dict[str, Any]:
        """A request for ``url`` whose source holds ``data``; ``announce`` is what its checksum is computed from."""
        tenant = tenant or self.tenant
        self.submitted.append(invariants.Submitted(tenant, request_id, data, expect))
        return {
            "tenant": tenant,
            "requestId": request_id,
            "algorithm": "MD5",
            "url": url,
            "destinationDirectory": "dir",
            "checksum": hashlib.md5(data if announce is None else announce).hexdigest(),
        }

    def transport(self):
        from glacier_pipelines.resources import resources_from_env

        return resources_from_env()["request_transport"].transport()

    def catalog(self):
        from glacier_pipelines.resources import resources_from_env

        return resources_from_env()["catalog"].get()

    def submit(self, *requests: dict[str, Any]) -> None:
        """Publish on the configured transport and move them into the catalog (intake)."""
        from glacier_pipelines.core.transport import submission_to_message
        from glacier_pipelines.flows import intake

        with self.transport() as transport:
            for req in requests:
                transport.publish_request(*submission_to_message(req))
            intake.drain_requests(transport, self.catalog())

    # -- the archive steps -------------------------------------------------------------------
    def setup(self, endpoint: str | None = None, **client_config: Any):
        """The product's ArchiveSetup from the environment; optionally its S3 client pointed elsewhere or reconfigured
        (same retry mode and options, e.g. a shorter ``read_timeout`` or fewer ``max_attempts``)."""
        from glacier_pipelines.resources import resources_from_env
        from glacier_pipelines.resources.archive import archive_setup

        r = resources_from_env()
        setup = archive_setup(r["catalog"], r["archive_store"], r["sources"], r["request_transport"])
        if endpoint is None and not client_config:
            return setup
        retries = client_config.pop("max_attempts", None)
        config = setup.s3.meta.config.merge(
            Config(**client_config, **({"retries": {"mode": "standard", "max_attempts": retries}} if retries else {}))
        )
        s3 = boto3.session.Session().client("s3", endpoint_url=endpoint or self.endpoint, region_name="us-east-1", config=config)
        return dataclasses.replace(setup, s3=s3, sources=dataclasses.replace(setup.sources, s3_client=s3))

    def run_batch(self, setup, run_id: str = "run-1", tenant: str | None = None):
        from glacier_pipelines.flows import archive as flow

        tenant = tenant or self.tenant
        batch, _ = flow.claim_batch(setup.catalog, tenant, run_id, 500, lambda run: True)
        verified = flow.verify_batch(setup, batch, tenant, run_id)
        # store_batch ends with the clean-up of stale uploads, and moto dates every upload 2010 (always stale):
        # look now, so an upload that a failed attempt did not abort itself is counted.
        self.abandoned += invariants.abandoned_uploads(setup.catalog, self.s3, self.bucket, self.key_prefix, tenant)
        stored = flow.store_batch(setup, batch, tenant, run_id)
        checked = flow.check_batch(setup, batch)
        return batch, verified, stored, checked

    def check(self, **kw: Any) -> invariants.Tally:
        kw.setdefault("staging_dir", self.home / "staging")
        tally = invariants.check(self.catalog(), self.s3, self.bucket, self.key_prefix, self.submitted, **kw)
        tally.orphaned += len(self.abandoned)
        tally.problems += [f"multipart upload {upload} of {key} left open by a failed attempt" for key, upload in self.abandoned]
        return tally

    def message(self, request_id: str, tenant: str | None = None) -> str:
        row = self.catalog().get_request(tenant or self.tenant, request_id)
        return " | ".join(row.messages) if row else ""


@pytest.fixture
def fault_env(tmp_path, monkeypatch, moto_endpoint):
    env = FaultEnv(tmp_path, monkeypatch, moto_endpoint)
    yield env
    from glacier_pipelines.resources.archive import _catalogs

    for url in [u for u in _catalogs if str(tmp_path) in u]:
        _catalogs.pop(url).dispose()


@pytest.fixture
def reliability(request):
    """``reliability(fault, injected, tally)``: asserts the invariant and records a row for the report."""

    def record(fault: str, injected: int, tally: invariants.Tally, *, side: str, outcome: str = "") -> None:
        row = {
            "side": side,
            "fault": fault,
            "injected": injected,
            "requests": tally.requests,
            "lost": tally.lost,
            "duplicated": tally.duplicated,
            "orphaned": tally.orphaned,
            "mismatched": tally.mismatched,
            "unexpected": tally.unexpected,
            "statuses": dict(tally.statuses),
            "outcome": outcome,
            "test": request.node.nodeid,
        }
        path = os.environ.get(REPORT_ENV)
        if path:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
        assert injected > 0, f"{fault}: the fault was never injected, so this test proves nothing"
        assert tally.clean(), f"{fault}: {tally.summary()}"

    return record
