"""core/faults.py reads a StoreError's own classification, so that callers moved onto the ObjectStore port keep their
transient / configuration / request decisions (deletion, compaction, packaging, trash purge)."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws

from glacier_pipelines.core import faults
from glacier_pipelines.core.objectstore import LocalStore, NotFound, NotRestored, S3Store, StoreError
from glacier_pipelines.flows import deletion


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "DeleteObject")


@pytest.mark.parametrize("kind", ["transient", "configuration", "request"])
def test_a_store_error_is_classified_by_its_kind(kind):
    # A bare StoreError is neither a ClientError nor a BotoCoreError: without the hook every kind would read "request".
    assert faults.classify(StoreError("x", code="Whatever", status=None, kind=kind)) == kind


def test_an_unknown_kind_attribute_falls_back_to_the_usual_rules():
    error = ValueError("bad")
    error.kind = "retry-me"  # type: ignore[attr-defined]
    assert faults.classify(error) == "request"
    odd = ConnectionError("down")
    odd.kind = None  # type: ignore[attr-defined]
    assert faults.classify(odd) == "transient"


@pytest.mark.parametrize(
    ("cause", "kind", "subclass"),
    [
        (EndpointConnectionError(endpoint_url="http://s3"), "transient", StoreError),
        (_client_error("SlowDown", 503), "transient", StoreError),
        (_client_error("AccessDenied", 403), "configuration", StoreError),
        (_client_error("NoSuchBucket", 404), "configuration", StoreError),
        (_client_error("NoSuchKey", 404), "request", NotFound),
        (_client_error("InvalidObjectState", 400), "request", NotRestored),
    ],
)
def test_wrapped_boto3_errors_keep_the_classification_of_the_original(cause, kind, subclass):
    wrapped = StoreError.wrap(cause, "DeleteObject", "k")
    assert type(wrapped) is subclass
    assert faults.classify(wrapped) == faults.classify(cause) == kind


def test_describe_of_a_wrapped_configuration_fault_still_names_the_setting():
    assert "GLACIER_BUCKET" in faults.describe(StoreError.wrap(_client_error("NoSuchBucket", 404), "PutObject", "k"))


def test_delete_object_takes_an_already_missing_key_as_deleted(tmp_path):
    store = LocalStore(tmp_path)
    store.put("a/b", b"x")
    deletion.delete_object(store, "a/b")
    deletion.delete_object(store, "a/b")  # gone already: what was wanted
    assert list(store.list("a/")) == []


def test_s3store_put_sends_the_content_type(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="content-type-test")
        S3Store(client, "content-type-test").put("l.jsonl", b"{}\n", content_type="application/x-ndjson", checksum_algorithm="SHA256")
        S3Store(client, "content-type-test").put("plain", b"x")
        assert client.head_object(Bucket="content-type-test", Key="l.jsonl")["ContentType"] == "application/x-ndjson"
        assert client.head_object(Bucket="content-type-test", Key="plain")["ContentType"] != "application/x-ndjson"
