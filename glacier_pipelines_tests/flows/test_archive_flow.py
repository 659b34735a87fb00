"""The archive steps without Dagster: claim, verify, store, check, over in-process moto."""

from __future__ import annotations

import hashlib

import pytest

from glacier_pipelines.core.checksums import ALGORITHMS
from glacier_pipelines.flows import archive as flow
from glacier_pipelines.resources.archive import archive_setup
from glacier_pipelines_tests.conftest import BUCKET, s3_client
from glacier_pipelines_tests.integration.conftest import postgres_url  # noqa: F401  (the fixture, for catalog_backend)


@pytest.fixture(autouse=True)
def _on_sqlite_and_postgresql(catalog_backend):
    """Every step test runs against both catalog databases."""


def _setup(archive):
    r = archive.defs().resources
    return archive_setup(r["catalog"], r["archive_store"], r["sources"], r["request_transport"])


def _run_steps(archive, tenant="lab"):
    setup = _setup(archive)
    batch, _ = flow.claim_batch(setup.catalog, tenant, "run-1", 100, lambda run: True)
    verified = flow.verify_batch(setup, batch, tenant, "run-1")
    stored = flow.store_batch(setup, batch, tenant, "run-1")
    flow.check_batch(setup, batch)  # the blocking check answers the stored requests
    return setup, batch, verified, stored


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_each_algorithm_matches_and_mismatches(archive, algorithm):
    data = f"content for {algorithm}".encode()
    digest = hashlib.new(ALGORITHMS[algorithm], data).hexdigest()
    wrong = hashlib.new(ALGORITHMS[algorithm], data + b"!").hexdigest()
    url = archive.file(f"{algorithm}.txt", data)
    archive.submit(
        {"tenant": "lab", "requestId": "match", "checksum": digest.upper(), "algorithm": algorithm.lower(), "url": url},
        {"tenant": "lab", "requestId": "mismatch", "checksum": wrong, "algorithm": algorithm, "url": url},
    )
    setup, batch, verified, stored = _run_steps(archive)
    report = archive.report("lab")
    assert report["match"]["status"] == "SUCCESS" and report["match"]["checksum"] == digest
    assert report["match"]["algorithm"] == algorithm
    assert report["mismatch"]["status"] == "ERROR"
    assert digest in report["mismatch"]["messages"][0] and wrong in report["mismatch"]["messages"][0]
    assert verified.failed == [("mismatch", report["mismatch"]["messages"][0])]
    assert stored.stored == 1
    assert flow.check_batch(setup, batch) == (1, [])


def test_unsafe_destination_directories_never_reach_a_key(archive):
    data = b"x"
    url = archive.file("x", data)
    md5 = hashlib.md5(data).hexdigest()
    archive.submit(
        {"tenant": "lab", "requestId": "dotdot", "checksum": md5, "algorithm": "MD5", "url": url, "destinationDirectory": "a/../../b"},
        {"tenant": "lab", "requestId": "absolute", "checksum": md5, "algorithm": "MD5", "url": url, "destinationDirectory": "/etc"},
        {"tenant": "lab", "requestId": "odd", "checksum": md5, "algorithm": "MD5", "url": url, "destinationDirectory": "a b/c*d/./e"},
    )
    _run_steps(archive)
    report = archive.report("lab")
    assert report["dotdot"]["status"] == report["absolute"]["status"] == "INVALID_CONTENT"
    assert "destinationDirectory" in report["dotdot"]["messages"][0]
    assert report["odd"]["storedFileUrl"] == f"s3://{BUCKET}/archive/lab/a b/c_d/e/{md5}"
    keys = [o["Key"] for o in s3_client().list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == [f"archive/lab/a b/c_d/e/{md5}"]


def test_s3_source_is_fetched_with_the_same_client(archive):
    data = b"already in a bucket"
    s3_client().create_bucket(Bucket="incoming")
    s3_client().put_object(Bucket="incoming", Key="some/file.dat", Body=data)
    archive.submit(archive.request("lab", "s3://incoming/some/file.dat", data, requestId="from-s3"))
    _run_steps(archive)
    row = archive.report("lab")["from-s3"]
    assert row["status"] == "SUCCESS" and row["fileSizeInBytes"] == len(data)


def test_store_failure_ends_in_error_and_leaves_nothing(archive, monkeypatch):
    """S3 refuses this request's object itself (not the settings, not a passing fault): a final ERROR, nothing left behind."""
    from botocore.exceptions import ClientError

    from glacier_pipelines.core import transfer
    from glacier_pipelines.core.objectstore import StoreError

    data = b"will not be stored"
    archive.submit(archive.request("lab", archive.file("f", data), data, requestId="f"))

    def refuse(*args, **kwargs):  # as the port raises S3's answer
        answer = ClientError(
            {"Error": {"Code": "EntityTooLarge", "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "PutObject"
        )
        raise StoreError.wrap(answer, "PutObject", "f")

    monkeypatch.setattr(transfer, "commit_stage", refuse)
    setup, batch, verified, stored = _run_steps(archive)
    row = archive.report("lab")["f"]
    assert row["status"] == "ERROR" and "EntityTooLarge" in row["messages"][-1]
    assert list((archive.home / "staging").rglob("*")) == [p for p in (archive.home / "staging").rglob("*") if p.is_dir()]
    assert "Contents" not in s3_client().list_objects_v2(Bucket=BUCKET)


def test_credentials_refused_at_store_keep_the_request_and_its_staged_bytes(archive, monkeypatch):
    """AccessDenied is the operator's to fix (issue #21): the step stops naming what to fix; the request stays VERIFIED, staged."""
    from botocore.exceptions import ClientError

    from glacier_pipelines.core import transfer
    from glacier_pipelines.core.objectstore import StoreError
    from glacier_pipelines.core.faults import ArchiveFault

    data = b"waits for the operator"
    archive.submit(archive.request("lab", archive.file("f", data), data, requestId="f"))

    def refuse(*args, **kwargs):  # as the port raises S3's answer
        answer = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "PutObject")
        raise StoreError.wrap(answer, "PutObject", "f")

    real = transfer.commit_stage
    monkeypatch.setattr(transfer, "commit_stage", refuse)
    with pytest.raises(ArchiveFault, match="AccessDenied.*credentials") as stopped:
        _run_steps(archive)
    assert stopped.value.kind == "configuration"
    assert archive.report("lab")["f"]["status"] == "VERIFIED"
    assert [p for p in (archive.home / "staging").rglob("*") if p.is_file()], "the verified bytes stay staged"
    assert archive.catalog().unpublished_responses() == []
    monkeypatch.setattr(transfer, "commit_stage", real)
    setup = _setup(archive)
    batch = archive.catalog().batch_for_run("run-1")
    flow.store_batch(setup, batch, "lab", "run-1")
    flow.check_batch(setup, batch)
    assert archive.report("lab")["f"]["status"] == "SUCCESS"
