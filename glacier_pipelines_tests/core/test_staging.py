"""core/staging.py over the storage port: the same locators, files and exceptions as before, on both backends."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from glacier_pipelines.core import checksums, staging
from glacier_pipelines.core.objectstore import LocalStore, S3Store

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
    assert isinstance(local.store(s3), LocalStore) and local.store(s3).root == tmp_path.absolute()
    assert isinstance(remote.store(s3), S3Store) and remote.store(s3).bucket == BUCKET  # type: ignore[attr-defined]


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
    area = staging.StagingArea.from_setting(f"s3://{BUCKET}/staged/", Path("/unused"))
    locator = area.locator("lab", 7, "ef" * 16)
    assert locator == f"s3://{BUCKET}/staged/lab/07/7-{'ef' * 16}"
    staging.write(s3, locator, [b"remote ", b"bytes"], True)
    head = s3.head_object(Bucket=BUCKET, Key=staging.split(locator)[1], ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == checksums.b64(hashlib.sha256(b"remote bytes").digest())
    assert head.get("StorageClass", "STANDARD") == "STANDARD"
    assert staging.read_bytes(s3, locator) == b"remote bytes"
    body = staging.open_read(s3, locator)
    assert isinstance(body, io.BytesIO) and body.getvalue() == b"remote bytes"  # commit_stage re-hashes getvalue()
    assert [loc for loc, _ in staging.listing(s3, area, "lab")] == [locator]
    assert staging.staged_bytes(s3, area, ["lab", "other"]) == len(b"remote bytes")
    staging.delete(s3, locator)
    with pytest.raises(FileNotFoundError):
        staging.read_bytes(s3, locator)
    assert list(staging.listing(s3, area, "lab")) == []


def test_remote_faults_still_reach_callers_as_boto3_raised_them(s3: Any) -> None:
    """flows/ and core/transfer catch ClientError and classify it with faults.py: staging must not change what they see."""
    gone = "s3://no-such-staging-bucket/lab/00/1-x"
    with pytest.raises(ClientError) as info:
        staging.read_bytes(s3, gone)
    assert info.value.response["Error"]["Code"] == "NoSuchBucket"
    with pytest.raises(ClientError):
        staging.write(s3, gone, [b"x"], True)
