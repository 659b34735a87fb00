"""Deletion flow on in-process moto: S3 faults keep the deletion pending, files still in flight wait, nothing is answered twice."""

from __future__ import annotations

import json

from botocore.exceptions import ClientError, EndpointConnectionError

from glacier_pipelines.core import transport as tp
from glacier_pipelines.core import worker_requests as wr
from glacier_pipelines.flows import deletion, intake
from glacier_pipelines_tests.conftest import BUCKET, archived_keys, responses_of


def _put(archive, request_id, body):
    archive.transport().publish_request(
        {tp.HEADER_CONTENT_TYPE: wr.DELETION, tp.HEADER_TENANT: "lab", tp.HEADER_REQUEST_ID: request_id}, json.dumps(body).encode()
    )
    intake.drain_requests(archive.transport(), archive.catalog())


def _store(archive, *requests):
    from glacier_pipelines.flows import archive as archive_flow
    from glacier_pipelines.resources.archive import archive_setup

    archive.submit(*requests)
    r = archive.defs().resources
    setup = archive_setup(r["catalog"], r["archive_store"], r["sources"], r["request_transport"])
    batch, _ = archive_flow.claim_batch(setup.catalog, "lab", "setup", 100, lambda run: True)
    archive_flow.verify_batch(setup, batch, "lab", "setup")
    archive_flow.store_batch(setup, batch, "lab", "setup")
    archive_flow.check_waiting(setup, "lab")
    return setup.s3


class FlakyS3:
    """The real (moto) client, except that DeleteObject fails the first ``failures`` times with ``error``."""

    def __init__(self, client, error, failures=1):
        self.client, self.error, self.failures = client, error, failures

    def delete_object(self, **kwargs):
        if self.failures:
            self.failures -= 1
            raise self.error
        return self.client.delete_object(**kwargs)

    def __getattr__(self, name):
        return getattr(self.client, name)


def test_a_transient_fault_keeps_the_deletion_pending_until_a_later_pass(archive):
    data = b"will be deleted" * 40
    s3 = _store(archive, archive.request("lab", archive.file("f", data), data, requestId="f"))
    responses_of(archive)
    _put(archive, "del-f", {"file": {"requestId": "f"}})
    setup = deletion.DeletionSetup(
        catalog=archive.catalog(), s3=FlakyS3(s3, EndpointConnectionError(endpoint_url="http://s3")), bucket=BUCKET, key_prefix="archive"
    )
    first = deletion.process(setup)
    assert first.answered == {} and len(first.waiting) == 1 and "EndpointConnectionError" in first.waiting[0]
    assert responses_of(archive) == {} and archive.report()["f"]["status"] == "SUCCESS"
    second = deletion.process(setup)
    assert second.answered == {"SUCCESS": 1} and second.objects_deleted == 1
    assert responses_of(archive)["del-f"]["status"] == "SUCCESS"
    assert [k for k in archived_keys() if "/dir/" in k] == []
    assert deletion.process(setup).answered == {}  # answered once


def test_a_request_fault_ends_the_deletion_with_error_and_the_others_go_on(archive):
    a, b = b"first file" * 30, b"second file" * 30
    s3 = _store(
        archive,
        archive.request("lab", archive.file("a", a), a, requestId="a"),
        archive.request("lab", archive.file("b", b), b, requestId="b"),
    )
    responses_of(archive)
    _put(archive, "del-a", {"file": {"requestId": "a"}})
    _put(archive, "del-b", {"file": {"requestId": "b"}})
    refused = ClientError(
        {"Error": {"Code": "InvalidObjectState", "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "DeleteObject"
    )
    report = deletion.process(
        deletion.DeletionSetup(catalog=archive.catalog(), s3=FlakyS3(s3, refused), bucket=BUCKET, key_prefix="archive")
    )
    assert report.answered == {"ERROR": 1, "SUCCESS": 1}
    answers = responses_of(archive)
    assert answers["del-a"]["status"] == "ERROR" and "InvalidObjectState" in answers["del-a"]["messages"][0]
    assert answers["del-b"]["status"] == "SUCCESS"
    assert archive.report()["a"]["status"] == "SUCCESS"  # still stored: its bytes were not deleted


def test_a_file_still_being_stored_waits(archive):
    data = b"in flight" * 40
    archive.submit(archive.request("lab", archive.file("p", data), data, requestId="pending"))
    _put(archive, "del-p", {"file": {"requestId": "pending"}})
    report = deletion.process(deletion.DeletionSetup(catalog=archive.catalog(), s3=None, bucket=BUCKET, key_prefix="archive"))
    assert report.answered == {} and "still in flight" in report.waiting[0]
    assert "del-p" not in responses_of(archive)


def test_the_deletion_ledger_line_goes_through_the_store_with_its_checksum_and_type(archive):
    import base64
    import hashlib

    data = b"ledger me" * 40
    s3 = _store(archive, archive.request("lab", archive.file("g", data), data, requestId="g"))
    _put(archive, "del-g", {"file": {"requestId": "g"}})
    assert deletion.process(deletion.DeletionSetup(catalog=archive.catalog(), s3=s3, bucket=BUCKET, key_prefix="archive")).answered == {
        "SUCCESS": 1
    }
    ledger_keys = [
        o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="archive/lab/").get("Contents", []) if o["Key"] not in archived_keys(s3)
    ]
    deleted = []
    for key in ledger_keys:
        head = s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        if b'"DELETED"' in body:
            deleted.append(key)
            assert head["ContentType"] == "application/x-ndjson"
            assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
            assert json.loads(body.splitlines()[0])["requestId"] == "g"
    assert len(deleted) == 1
