"""BucketAdmin (S3 only: HeadBucket, CreateBucket, lifecycle configurations) and bucket_stores, over in-process moto."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from glacier_pipelines.core.objectstore import BucketAdmin, LocalStore, NotFound, S3Store, StoreError, bucket_stores

RULE = {"ID": "r1", "Filter": {"Prefix": "a/"}, "Status": "Enabled", "Expiration": {"Days": 3}}


@pytest.fixture
def client(aws_credentials: None):
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1")


def test_a_bucket_is_created_checked_and_a_missing_one_refused(client) -> None:
    admin = BucketAdmin(client)
    admin.create("made")
    admin.check("made")
    with pytest.raises(StoreError) as info:
        admin.check("never-made")
    assert (info.value.status, info.value.kind) == (404, "request") and info.value.code in ("404", "NoSuchBucket", "NotFound")


def test_lifecycle_rules_are_read_written_and_deleted(client) -> None:
    admin = BucketAdmin(client)
    admin.create("rules")
    assert admin.lifecycle("rules") is None  # no configuration: not an error
    admin.put_lifecycle("rules", [RULE])
    assert [r["ID"] for r in admin.lifecycle("rules")["Rules"]] == ["r1"]
    admin.delete_lifecycle("rules")
    assert admin.lifecycle("rules") is None
    with pytest.raises(StoreError) as info:
        admin.lifecycle("no-such-bucket")
    assert info.value.code == "NoSuchBucket" and info.value.kind == "configuration"


def test_bucket_stores_from_a_client_a_store_or_a_function(client, tmp_path: Path) -> None:
    client.create_bucket(Bucket="one")
    on_client = bucket_stores(client)("one")
    assert isinstance(on_client, S3Store) and on_client.bucket == "one"
    on_store = bucket_stores(S3Store(client, "other"))("one")
    assert isinstance(on_store, S3Store) and (on_store.bucket, on_store.client) == ("one", client)
    local = bucket_stores(lambda bucket: LocalStore(tmp_path / bucket))("two")
    local.put("k", b"v")
    assert (tmp_path / "two" / "k").read_bytes() == b"v"
    with pytest.raises(NotFound):
        on_client.head("k")
