"""core/staging.py over the storage port: the same locators, files and exceptions as before, on both backends."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from glacier_pipelines.core import checksums, staging
from glacier_pipelines.core.objectstore import LocalStore, S3Store, StoreError, bucket_stores

BUCKET = "staging-test"


@pytest.fixture
def s3(aws_credentials: None) -> Any:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_the_area_is_an_object_store(tmp_path: Path, s3: Any) -> None:
    local = staging.StagingArea.from_setting("", tmp_path)
    remote = staging.StagingArea.from_setting(f"s3://{BUCKET}/staged", tmp_path)
    stores = bucket_stores(s3)
    assert isinstance(local.store(None), LocalStore) and local.store(None).root == tmp_path.absolute()
    assert isinstance(remote.store(stores), S3Store) and remote.store(stores).bucket == BUCKET  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="no stores were given"):
        remote.store(None)


def test_a_local_stage_is_one_plain_file_at_its_locator(tmp_path: Path) -> None:
    area = staging.StagingArea.from_setting(None, tmp_path)
    locator = area.locator("lab", 300, "ab" * 16)
    staging.write(None, locator, [b"verified ", b"bytes"], True)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [Path(locator)]  # no sidecar, no partial
    assert Path(locator).read_bytes() == staging.read_bytes(None, locator) == b"verified bytes"
    with staging.open_read(None, locator) as f:
        assert f.seekable() and f.read() == b"verified bytes"  # a real file: boto3 seeks it to retry a PUT
    assert [loc for loc, _ in staging.listing(None, area, "lab")] == [locator]
    staging.delete(None, locator)
    staging.delete(None, locator)  # already gone: nothing to do
    with pytest.raises(FileNotFoundError):
        staging.read_bytes(None, locator)
    with pytest.raises(FileNotFoundError):
        staging.open_read(None, locator)


def test_the_local_listing_includes_what_a_killed_write_left(tmp_path: Path) -> None:
    area = staging.StagingArea.from_setting(None, tmp_path)
    done = area.locator("lab", 1, "cd" * 16)
    staging.write(None, done, [b"whole"], False)
    partial = Path(done).with_name(".objectstore-00000000deadbeef.part")
    partial.write_bytes(b"half")
    (tmp_path / "other-tenant").mkdir()
    (tmp_path / "other-tenant" / "x").write_bytes(b"not lab's")
    listed = dict(staging.listing(None, area, "lab"))
    assert sorted(listed) == sorted([done, str(partial)]) and all(stamp > 0 for stamp in listed.values())
    staging.delete(None, str(partial))
    assert not partial.exists()


def test_a_remote_stage_is_a_checksummed_put(s3: Any) -> None:
    stores = bucket_stores(s3)
    area = staging.StagingArea.from_setting(f"s3://{BUCKET}/staged/", Path("/unused"))
    locator = area.locator("lab", 7, "ef" * 16)
    assert locator == f"s3://{BUCKET}/staged/lab/07/7-{'ef' * 16}"
    staging.write(stores, locator, [b"remote ", b"bytes"], True)
    head = s3.head_object(Bucket=BUCKET, Key=staging.split(locator)[1], ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == checksums.b64(hashlib.sha256(b"remote bytes").digest())
    assert head.get("StorageClass", "STANDARD") == "STANDARD"
    assert staging.read_bytes(stores, locator) == b"remote bytes"
    body = staging.open_read(stores, locator)
    assert isinstance(body, io.BytesIO) and body.getvalue() == b"remote bytes"  # commit_stage re-hashes getvalue()
    assert [loc for loc, _ in staging.listing(stores, area, "lab")] == [locator]
    assert staging.staged_bytes(stores, area, ["lab", "other"]) == len(b"remote bytes")
    staging.delete(stores, locator)
    with pytest.raises(FileNotFoundError):
        staging.read_bytes(stores, locator)
    assert list(staging.listing(stores, area, "lab")) == []


def test_remote_faults_reach_callers_as_the_ports_store_error(s3: Any) -> None:
    """flows/ and core/transfer catch StoreError and read its kind: a missing bucket is a configuration fault, not gone bytes."""
    gone = "s3://no-such-staging-bucket/lab/00/1-x"
    with pytest.raises(StoreError) as info:
        staging.read_bytes(bucket_stores(s3), gone)
    assert info.value.code == "NoSuchBucket" and info.value.kind == "configuration"
    with pytest.raises(StoreError):
        staging.write(bucket_stores(s3), gone, [b"x"], True)


def test_local_faults_stay_the_file_systems(tmp_path: Path) -> None:
    """A local staged file is a file: core/packaging.py catches OSError around reading it."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")
    with pytest.raises(OSError) as info:
        staging.write(None, str(blocker / "staged"), [b"x"], True)
    assert not isinstance(info.value, StoreError)
