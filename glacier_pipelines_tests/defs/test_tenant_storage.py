"""GLACIER_TENANTS_CONFIG on the whole archive path (in-process moto): two tenants with their own bucket, prefix, class, SSE and
small-file threshold; deduplication that never leaves a tenant's placement; isolation of one tenant's files from another's
requests, down to the bucket of every S3 call; a tenant whose bucket is missing stops with a configuration fault, losing nothing."""

from __future__ import annotations

import hashlib
import json

import boto3
import botocore.handlers
import dagster as dg
import pytest

from glacier_pipelines.core import transport as tp
from glacier_pipelines.core import worker_requests as wr
from glacier_pipelines.core.ledger import is_ledger_key
from glacier_pipelines.flows import intake
from glacier_pipelines_tests.conftest import BUCKET, responses_of, s3_client
from glacier_pipelines_tests.integration.conftest import postgres_url  # noqa: F401  (fixture, for catalog_backend)

LAB, MUSEUM = "lab-archive", "museum-archive"


def _config(path, kms_key, lab_class="DEEP_ARCHIVE", extra=""):
    path.write_text(f"""
[tenants.lab]
bucket = "{LAB}"
key_prefix = "labs"
storage_class = "{lab_class}"
small_file_threshold_bytes = 100

[tenants.museum]
bucket = "{MUSEUM}"
key_prefix = "collections"
storage_class = "GLACIER_IR"
sse = "aws:kms"
sse_kms_key_id = "{kms_key}"
small_file_threshold_bytes = 4096
{extra}""")


@pytest.fixture
def two_tenants(archive, tmp_path, monkeypatch):
    s3 = s3_client()
    s3.create_bucket(Bucket=LAB)
    s3.create_bucket(Bucket=MUSEUM)
    key = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"]
    _config(tmp_path / "tenants.toml", key)
    monkeypatch.setenv("GLACIER_TENANTS_CONFIG", str(tmp_path / "tenants.toml"))
    monkeypatch.setenv("GLACIER_PACKAGE_MAX_AGE_HOURS", "0")  # a package closes in the run that opened it
    archive.kms_key = key
    return archive


@pytest.fixture
def s3_calls():
    """(operation, bucket) of every S3 call made by a client created while the fixture is active (a botocore event hook)."""
    calls: list[tuple[str, str | None]] = []

    def record(params, model, **_):
        calls.append((model.name, params.get("Bucket")))

    handler = ("before-parameter-build.s3", record)
    botocore.handlers.BUILTIN_HANDLERS.append(handler)
    yield calls
    botocore.handlers.BUILTIN_HANDLERS.remove(handler)


def _data(name: str, size: int) -> bytes:
    return (hashlib.sha256(name.encode()).digest() * (size // 32 + 1))[:size]


def _archive_both(archive, instance):
    shared, big = _data("shared", 2000), _data("big", 8000)
    archive.submit(
        archive.request("lab", archive.file("lab-shared", shared), shared, requestId="lab-a", activateSmallFilePackaging=True),
        archive.request("museum", archive.file("museum-shared", shared), shared, requestId="museum-a", activateSmallFilePackaging=True),
        archive.request("museum", archive.file("museum-big", big), big, requestId="museum-b", activateSmallFilePackaging=True),
    )
    for tenant in ("lab", "museum"):
        result = archive.run(tenant, instance)
        assert result.success, tenant
        checks = result.get_asset_check_evaluations()
        assert checks and all(c.passed for c in checks)
    return shared, big


def _put(archive, tenant, content_type, request_id, body):
    archive.transport().publish_request(
        {tp.HEADER_CONTENT_TYPE: content_type, tp.HEADER_TENANT: tenant, tp.HEADER_REQUEST_ID: request_id}, json.dumps(body).encode()
    )


def test_two_tenants_land_in_their_own_bucket_prefix_class_and_encryption(two_tenants, instance):
    archive = two_tenants
    shared, big = _archive_both(archive, instance)
    md5 = hashlib.md5(shared).hexdigest()
    answers = responses_of(archive)
    assert {r: answers[r]["status"] for r in ("lab-a", "museum-a", "museum-b")} == dict.fromkeys(
        ("lab-a", "museum-a", "museum-b"), "SUCCESS"
    )
    url = {r: answers[r]["content"]["storeFileMetadata"]["storedFileUrl"] for r in ("lab-a", "museum-a", "museum-b")}
    # lab: 2,000 bytes is over its 100-byte threshold, so the file is stored alone, in lab's bucket, prefix and class
    assert url["lab-a"] == f"s3://{LAB}/labs/lab/dir/{md5}"
    # museum: the same content is a package member (under its 4,096-byte threshold), stored again in museum's own bucket
    assert url["museum-a"].startswith(f"s3://{MUSEUM}/collections/museum/packages/") and url["museum-a"].endswith(f".tar?member=dir/{md5}")
    assert url["museum-b"] == f"s3://{MUSEUM}/collections/museum/dir/{hashlib.md5(big).hexdigest()}"
    report = archive.report()
    assert not report["museum-a"]["deduplicated"] and not report["lab-a"]["deduplicated"]
    assert (report["lab-a"]["storageClass"], report["museum-a"]["storageClass"], report["museum-b"]["storageClass"]) == (
        "DEEP_ARCHIVE",
        "GLACIER_IR",
        "GLACIER_IR",
    )
    s3 = s3_client()
    lab_head = s3.head_object(Bucket=LAB, Key=f"labs/lab/dir/{md5}")
    assert lab_head["StorageClass"] == "DEEP_ARCHIVE" and "SSEKMSKeyId" not in lab_head
    package_key = url["museum-a"].split("?")[0].removeprefix(f"s3://{MUSEUM}/")
    for key in (package_key, f"collections/museum/dir/{hashlib.md5(big).hexdigest()}"):
        head = s3.head_object(Bucket=MUSEUM, Key=key)
        assert head["StorageClass"] == "GLACIER_IR"
        assert head["ServerSideEncryption"] == "aws:kms" and archive.kms_key in head["SSEKMSKeyId"]
    museum_keys = [o["Key"] for o in s3.list_objects_v2(Bucket=MUSEUM)["Contents"]]
    assert f"{package_key}.manifest.jsonl" in museum_keys
    # each tenant's request ledger lies next to its bytes; the global bucket holds nothing of either tenant
    assert any(is_ledger_key(k) and k.startswith("collections/museum/") for k in museum_keys)
    assert any(is_ledger_key(o["Key"]) and o["Key"].startswith("labs/lab/") for o in s3.list_objects_v2(Bucket=LAB)["Contents"])
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
    assert not any(k.startswith("collections/museum/") for k in (o["Key"] for o in s3.list_objects_v2(Bucket=LAB).get("Contents", [])))


def test_deduplication_stays_within_the_tenants_current_bucket_prefix_and_class(two_tenants, catalog_backend, instance, tmp_path):
    archive = two_tenants
    data = _data("moves-class", 3000)
    archive.submit(archive.request("lab", archive.file("one", data), data, requestId="first"))
    assert archive.run("lab", instance).success
    archive.submit(archive.request("lab", archive.file("two", data), data, requestId="same-place"))
    assert archive.run("lab", instance).success
    assert archive.report()["same-place"]["deduplicated"] is True
    _config(tmp_path / "tenants.toml", archive.kms_key, lab_class="GLACIER")  # lab now stores in GLACIER
    archive.submit(archive.request("lab", archive.file("three", data), data, "SHA-256", requestId="new-class"))
    assert archive.run("lab", instance).success
    report = archive.report()
    assert report["new-class"]["deduplicated"] is False and report["new-class"]["storageClass"] == "GLACIER"
    archive.submit(archive.request("lab", archive.file("four", data), data, requestId="after"))
    assert archive.run("lab", instance).success
    after = archive.report()["after"]
    assert (
        after["deduplicated"] is True
        and after["storageClass"] == "GLACIER"
        and after["storedFileUrl"] == report["new-class"]["storedFileUrl"]
    )


def test_another_tenants_files_are_refused_alike_and_its_bucket_is_never_called(two_tenants, instance, s3_calls):
    from glacier_pipelines.defs.intake.worker_sensors import worker_requests_sensor

    archive = two_tenants
    shared, big = _archive_both(archive, instance)
    answers = responses_of(archive)
    museum_url = answers["museum-b"]["content"]["storeFileMetadata"]["storedFileUrl"]
    member_url = answers["museum-a"]["content"]["storeFileMetadata"]["storedFileUrl"]
    unknown_url = f"s3://{MUSEUM}/collections/museum/dir/{'0' * 32}"
    big_md5 = hashlib.md5(big).hexdigest()
    del s3_calls[:]
    for name, selector in {
        "url": {"url": museum_url},
        "member": {"url": member_url},
        "checksum": {"checksum": big_md5},
        "unknown": {"url": unknown_url},
        "request": {"requestId": "museum-b"},
    }.items():
        _put(archive, "lab", wr.DELETION, f"del-{name}", {"file": selector})
        _put(archive, "lab", wr.RESTORATION, f"rest-{name}", {"files": [selector], "days": 1})
        _put(archive, "lab", wr.AVAILABILITY, f"avail-{name}", {"files": [selector]})
    _put(archive, "lab", wr.DELETION, "del-own", {"file": {"requestId": "lab-a"}})  # lab's own file: its bucket is called
    intake.drain_requests(archive.transport(), archive.catalog())
    worker_requests_sensor(dg.build_sensor_context(instance=instance, resources=archive.defs().resources))
    answers = responses_of(archive)
    for name, described in {
        "url": f"url {museum_url}",
        "member": f"url {member_url}",
        "checksum": f"checksum {big_md5}",
        "unknown": f"url {unknown_url}",
        "request": "requestId museum-b",
    }.items():
        words = f"{described}: no archived file of tenant lab has that name"
        assert answers[f"del-{name}"]["status"] == "ERROR" and answers[f"del-{name}"]["messages"] == [words]
        assert answers[f"rest-{name}"]["status"] == "ERROR" and answers[f"rest-{name}"]["messages"] == [f"{described}: REFUSED: {words}"]
        file = answers[f"avail-{name}"]["content"]["files"][0]
        assert file["available"] is False and file["storedFileUrl"] is None and file["messages"] == [words]
    assert answers["del-own"]["status"] == "SUCCESS"
    assert ("DeleteObject", LAB) in s3_calls  # the hook sees the calls that were made
    assert not [c for c in s3_calls if c[1] == MUSEUM], s3_calls
    assert {r: archive.report()[r]["status"] for r in ("museum-a", "museum-b")} == {"museum-a": "SUCCESS", "museum-b": "SUCCESS"}
    assert s3_client().head_object(Bucket=MUSEUM, Key=museum_url.removeprefix(f"s3://{MUSEUM}/"))["ContentLength"] == len(big)


def test_a_tenant_whose_bucket_is_missing_stops_with_a_configuration_fault_and_loses_nothing(two_tenants, instance, tmp_path):
    archive = two_tenants
    _config(tmp_path / "tenants.toml", archive.kms_key, extra='\n[tenants.ghost]\nbucket = "ghost-archive"\nstorage_class = "GLACIER"\n')
    data = _data("ghost", 700)
    archive.submit(archive.request("ghost", archive.file("g", data), data, requestId="g1"))
    result = archive.run("ghost", instance)
    assert not result.success
    failure = next(e for e in result.get_step_failure_events())
    assert failure.step_key == "verified_files"
    assert failure.step_failure_data.user_failure_data.metadata["fault"].value == "configuration"
    message = failure.step_failure_data.user_failure_data.description
    assert "tenant ghost" in message and "'ghost-archive' does not exist" in message and "[tenants.ghost] bucket" in message
    assert archive.report()["g1"]["status"] == "CLAIMED" and responses_of(archive) == {}  # kept in place, nothing answered
    s3_client().create_bucket(Bucket="ghost-archive")
    assert archive.run("ghost", instance).success
    answer = responses_of(archive)["g1"]
    assert answer["status"] == "SUCCESS"
    assert (
        answer["content"]["storeFileMetadata"]["storedFileUrl"] == f"s3://ghost-archive/archive/ghost/dir/{hashlib.md5(data).hexdigest()}"
    )


def test_the_cli_can_refuse_a_missing_tenant_bucket_before_any_run(two_tenants, tmp_path):
    from glacier_pipelines.resources import resources_from_env
    from glacier_pipelines.resources.archive import TenantBucketError, check_tenant_buckets

    _config(tmp_path / "tenants.toml", two_tenants.kms_key, extra='\n[tenants.ghost]\nbucket = "ghost-archive"\n')
    store = resources_from_env()["archive_store"]
    check_tenant_buckets(store, ["lab", "museum"])  # both exist: nothing raised
    with pytest.raises(TenantBucketError, match=r"tenant ghost: bucket 'ghost-archive' does not exist .*\[tenants.ghost\] bucket"):
        check_tenant_buckets(store, ["lab", "ghost"])
