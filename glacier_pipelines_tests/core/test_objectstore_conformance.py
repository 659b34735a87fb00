"""One generic suite for every ObjectStore: in-process moto, SeaweedFS and the local folder.

As Arvados' keepstore runs one generic volume suite against every driver, each test here runs
against each implementation. Where the backends differ, the store declares it in
``capabilities`` and the test asserts the declared behaviour both ways (a store that stops
validating checksums, or starts to, fails here): nothing is skipped for a backend.

Backend differences declared here (checked against moto 5.2 and SeaweedFS 4):
  * moto validates no checksum (MOTO.validates_checksums is False); SeaweedFS and the local store do.
  * the local store cannot hold both ``a`` and ``a/b`` (a folder is not also a file).
  * SeaweedFS treats storage classes as labels: no restore (405), archived objects read at once;
    it lists a folder's keys before a key that sorts ahead of them (``p/a/c`` before ``p/a-``).
  * in-process moto answers only botocore, so its presigned URLs are checked by their form;
    the local store's presigned URL is a file:// URL that never expires.
  * moto ignores CopySourceIfMatch and answers no checksum for UploadPartCopy; SeaweedFS's
    CopyObject keeps a CRC32 whatever checksum algorithm it is asked for.
  * moto and SeaweedFS answer ListParts without the parts' checksums.
  * moto drops the ``-N`` of a composite checksum on HEAD; moto returns no checksum from
    CompleteMultipartUpload, and raises a bare KeyError (not NoSuchUpload) for an upload that is
    gone: the moto backend answers NoSuchUpload there, as AWS does (``_answer_gone_uploads``).
"""

from __future__ import annotations

import base64
import hashlib
import io
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from glacier_pipelines.core.constants import MiB
from glacier_pipelines.core.objectstore import (
    MOTO,
    SEAWEEDFS,
    ChecksumRejected,
    LocalStore,
    NotFound,
    NotRestored,
    ObjectStore,
    Part,
    S3Store,
    StoreError,
)
from glacier_pipelines_tests.core.test_transfer_seaweedfs import seaweedfs  # noqa: F401 (the session's server)


@dataclass
class Backend:
    name: str
    store: ObjectStore
    other: ObjectStore  # another bucket (or folder) of the same kind: copies read from it
    presign_reachable: bool  # urllib can fetch its presigned URLs (in-process moto answers botocore only)


def _answer_gone_uploads(client: Any, bucket: str) -> None:
    """In-process moto raises KeyError for an upload it no longer has; AWS answers 404 NoSuchUpload."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    def gone(params: dict[str, Any], **_: Any) -> None:
        if params.get("UploadId") not in s3_backends[DEFAULT_ACCOUNT_ID]["global"].buckets[bucket].multiparts:
            raise ClientError(
                {
                    "Error": {"Code": "NoSuchUpload", "Message": "The specified upload does not exist."},
                    "ResponseMetadata": {"HTTPStatusCode": 404},
                },
                "UploadPart",
            )

    for operation in ("UploadPart", "CompleteMultipartUpload"):
        client.meta.events.register(f"before-parameter-build.s3.{operation}", gone)


@pytest.fixture(params=["moto", pytest.param("seaweedfs", marks=[pytest.mark.slow, pytest.mark.xdist_group("seaweedfs")]), "local"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, aws_credentials: None) -> Iterator[Backend]:
    if request.param == "moto":
        with mock_aws():
            client = boto3.client("s3", region_name="us-east-1")
            client.create_bucket(Bucket="conformance")
            client.create_bucket(Bucket="conformance-other")
            _answer_gone_uploads(client, "conformance")
            yield Backend(
                "moto",
                S3Store(client, "conformance", capabilities=MOTO),
                S3Store(client, "conformance-other", capabilities=MOTO),
                presign_reachable=False,
            )
    elif request.param == "seaweedfs":
        from glacier_pipelines.emulator import SEAWEED_ACCESS_KEY, SEAWEED_SECRET_KEY

        client = boto3.client(
            "s3",
            endpoint_url=request.getfixturevalue("seaweedfs"),
            region_name="us-east-1",
            aws_access_key_id=SEAWEED_ACCESS_KEY,
            aws_secret_access_key=SEAWEED_SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=16),
        )
        bucket = f"c-{uuid.uuid4().hex[:16]}"
        client.create_bucket(Bucket=bucket)
        client.create_bucket(Bucket=f"{bucket}-other")
        yield Backend(
            "seaweedfs",
            S3Store(client, bucket, capabilities=SEAWEEDFS),
            S3Store(client, f"{bucket}-other", capabilities=SEAWEEDFS),
            presign_reachable=True,
        )
    else:
        yield Backend("local", LocalStore(tmp_path / "store"), LocalStore(tmp_path / "other"), presign_reachable=True)


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def sha256(data: bytes) -> str:
    return b64(hashlib.sha256(data).digest())


def same_composite(reported: str, expected: str) -> bool:
    """moto reports a composite without its ``-N``; the digest itself must match."""
    return reported == expected or reported == expected.partition("-")[0]


def put_many(store: ObjectStore, keys: list[str]) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: store.put(k, b""), keys))


# -- head, put, get ------------------------------------------------------------------------------------------------


def test_the_store_is_an_object_store(backend: Backend) -> None:
    assert isinstance(backend.store, ObjectStore)


def test_put_then_head_and_get(backend: Backend) -> None:
    store, data = backend.store, b"verified bytes" * 100
    put = store.put("t/a/obj", data, metadata={"request-id": "r1"}, checksum=sha256(data))
    assert put.checksums == {"SHA256": sha256(data)}
    head = store.head("t/a/obj", checksum=True)
    assert (head.key, head.size, head.etag, head.storage_class) == ("t/a/obj", len(data), put.etag, "STANDARD")
    assert head.metadata == {"request-id": "r1"} and head.checksums["SHA256"] == sha256(data)
    assert head.restore is None and head.last_modified.tzinfo is not None
    assert "SHA256" not in store.head("t/a/obj").checksums or backend.name == "local"  # only asked for with checksum=True
    with store.get("t/a/obj") as body:
        assert (body.size, body.total_size, body.etag, body.content_range) == (len(data), len(data), put.etag, None)
        assert body.metadata == {"request-id": "r1"} and body.read() == data


def test_put_a_file_like_body_with_a_storage_class(backend: Backend) -> None:
    store, data = backend.store, bytes(range(256)) * 4096  # 1 MiB: streamed, not one read
    store.put("t/deep", io.BytesIO(data), storage_class="DEEP_ARCHIVE", checksum_algorithm="SHA256")
    head = store.head("t/deep", checksum=True)
    assert (head.size, head.storage_class, head.checksums["SHA256"]) == (len(data), "DEEP_ARCHIVE", sha256(data))
    assert [(e.key, e.size, e.storage_class) for e in store.list("t/")] == [("t/deep", len(data), "DEEP_ARCHIVE")]


def test_a_put_with_tags_keeps_them_and_a_copy_too(backend: Backend) -> None:
    store, tags = backend.store, {"glacier-pipelines": "restored-copy", "why": "a lifecycle rule selects it"}
    store.put("t/tagged", b"restored bytes", checksum=sha256(b"restored bytes"), tags=tags)
    store.put("t/plain", b"no tags")
    assert store.tags("t/tagged") == tags and store.tags("t/plain") == {}
    store.copy("t/tagged", "t/copied")
    assert store.tags("t/copied") == tags and store.get("t/copied").read() == b"restored bytes"


@pytest.mark.parametrize("algorithm", ["CRC32", "SHA1"])
def test_the_store_answers_the_checksum_of_the_algorithm_asked_for(backend: Backend, algorithm: str) -> None:
    data = b"other algorithms"
    expected = b64(zlib.crc32(data).to_bytes(4, "big")) if algorithm == "CRC32" else b64(hashlib.sha1(data).digest())
    assert backend.store.put("t/sum", data, checksum_algorithm=algorithm).checksums == {algorithm: expected}
    assert backend.store.head("t/sum", checksum=True).checksums.get(algorithm) == expected


def test_a_put_replaces_the_object_whole(backend: Backend) -> None:
    store = backend.store
    first = store.put("t/x", b"first", storage_class="GLACIER_IR", metadata={"v": "1"})
    second = store.put("t/x", b"second version")
    assert first.etag != second.etag
    head = store.head("t/x")
    assert (head.size, head.storage_class, head.metadata, head.etag) == (14, "STANDARD", {}, second.etag)
    assert store.get("t/x").read() == b"second version"


def test_ranged_and_streamed_gets(backend: Backend) -> None:
    store, data = backend.store, bytes(range(100))
    store.put("t/r", data)
    part = store.get("t/r", byte_range=(10, 19))
    assert (part.content_range, part.size, part.total_size, part.read()) == ((10, 19), 10, 100, data[10:20])
    tail = store.get("t/r", byte_range=(95, None))
    assert (tail.content_range, tail.read()) == ((95, 99), data[95:])
    past = store.get("t/r", byte_range=(90, 500))  # an end past the object is cut to it, as HTTP says
    assert (past.content_range, past.read()) == ((90, 99), data[90:])
    with pytest.raises(StoreError) as info:
        store.get("t/r", byte_range=(100, 120))
    assert (info.value.code, info.value.status, type(info.value)) == ("InvalidRange", 416, StoreError)
    with store.get("t/r") as body:
        assert b"".join(body.iter_chunks(33)) == data


# -- errors --------------------------------------------------------------------------------------------------------


def test_a_missing_key_is_not_found(backend: Backend) -> None:
    store = backend.store
    calls = [lambda: store.head("t/none"), lambda: store.get("t/none"), lambda: store.copy("t/none", "t/copy")]
    if store.capabilities.enforces_restore:  # else RestoreObject is refused whatever the key
        calls.append(lambda: store.restore("t/none", days=1))
    for call in calls:
        with pytest.raises(NotFound) as info:
            call()
        assert info.value.status == 404 and not info.value.transient and info.value.kind == "request"
        assert info.value.code in ("NoSuchKey", "404", "NotFound")
    store.delete("t/none")  # deleting what is not there is not an error
    store.delete(["t/none", "t/neither"])


def test_a_wrong_checksum_is_refused_where_the_store_validates(backend: Backend) -> None:
    store, data = backend.store, b"the bytes sent"
    wrong = sha256(b"other bytes")
    if store.capabilities.validates_checksums:
        with pytest.raises(ChecksumRejected) as info:
            store.put("t/bad", data, checksum=wrong)
        assert (
            info.value.status == 400
            and not info.value.transient
            and info.value.code in ("BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch")
        )
        with pytest.raises(NotFound):
            store.head("t/bad")
    else:  # declared: the store keeps whatever checksum it was told
        store.put("t/bad", data, checksum=wrong)
        assert store.head("t/bad", checksum=True).checksums["SHA256"] == wrong


# -- multipart -----------------------------------------------------------------------------------------------------


def test_multipart_round_trip_with_part_checksums(backend: Backend) -> None:
    store = backend.store
    pieces = [b"a" * (5 * MiB), bytes(range(256)) * (5 * MiB // 256), b"the last part may be small"]
    upload = store.begin("t/big", storage_class="GLACIER_IR", metadata={"parts": "3"}, checksum_algorithm="SHA256")
    parts = [store.upload_part(upload, n, piece, checksum=sha256(piece)) for n, piece in enumerate(pieces, 1)]
    assert [p.checksum for p in parts] == [sha256(p) for p in pieces]
    composite = f"{b64(hashlib.sha256(b''.join(hashlib.sha256(p).digest() for p in pieces)).digest())}-3"
    done = store.complete(upload, parts)
    assert not done.checksums or same_composite(done.checksums["SHA256"], composite)
    head = store.head("t/big", checksum=True)
    assert (head.size, head.storage_class, head.metadata, head.etag) == (sum(map(len, pieces)), "GLACIER_IR", {"parts": "3"}, done.etag)
    assert head.etag.endswith("-3") and same_composite(head.checksums["SHA256"], composite)
    assert store.get("t/big").read() == b"".join(pieces)


def test_a_wrong_part_checksum_is_refused_and_an_aborted_upload_is_gone(backend: Backend) -> None:
    store = backend.store
    upload = store.begin("t/parts")
    if store.capabilities.validates_checksums:
        with pytest.raises(ChecksumRejected):
            store.upload_part(upload, 1, b"part bytes", checksum=sha256(b"not these"))
    else:
        assert store.upload_part(upload, 1, b"part bytes", checksum=sha256(b"not these")).checksum == sha256(b"not these")
    good = store.upload_part(upload, 1, b"part bytes", checksum=sha256(b"part bytes"))
    store.abort(upload)
    store.abort(upload)  # an upload already gone is what abort wanted
    with pytest.raises(NotFound) as info:
        store.upload_part(upload, 2, b"late")
    assert info.value.code == "NoSuchUpload" and good.checksum == sha256(b"part bytes")
    assert list(store.list("t/")) == []


def test_complete_refuses_parts_it_did_not_receive(backend: Backend) -> None:
    store = backend.store
    upload = store.begin("t/refused")
    first = store.upload_part(upload, 1, b"x" * (5 * MiB))
    with pytest.raises(StoreError) as info:
        store.complete(upload, [Part(1, "0" * 32, first.checksum)])
    assert info.value.code == "InvalidPart" and info.value.kind == "request"
    store.abort(upload)


def test_the_parts_of_an_open_upload_are_listed_as_their_uploads_answered(backend: Backend) -> None:
    store = backend.store
    upload = store.begin("t/resumed", checksum_algorithm="CRC32")
    assert list(store.parts(upload)) == []
    pieces = {1: b"a" * (5 * MiB), 3: b"third, sent before the second", 2: b"b" * (5 * MiB)}
    sent = {n: store.upload_part(upload, n, piece, checksum=b64(zlib.crc32(piece).to_bytes(4, "big"))) for n, piece in pieces.items()}
    listed = list(store.parts(upload))
    assert [p.number for p in listed] == [1, 2, 3]  # by number, whatever order they were sent in
    assert [p.etag for p in listed] == [sent[n].etag for n in (1, 2, 3)]
    if store.capabilities.lists_part_checksums:
        assert [p.checksum for p in listed] == [sent[n].checksum for n in (1, 2, 3)]
    else:  # declared (moto, SeaweedFS): ListParts answers no checksum
        assert [p.checksum for p in listed] == [None, None, None]
    store.complete(upload, [sent[n] for n in (1, 2, 3)])
    assert store.get("t/resumed").read() == pieces[1] + pieces[2] + pieces[3]
    with pytest.raises(NotFound):
        list(store.parts(upload))  # completed: the upload is gone


def test_open_uploads_are_listed_until_completed_or_aborted(backend: Backend) -> None:
    store = backend.store
    first, second, elsewhere = store.begin("t/u/a"), store.begin("t/u/b"), store.begin("x/c")
    listed = list(store.uploads("t/u/"))
    if not store.capabilities.lists_in_key_order:  # declared (SeaweedFS): in its own order
        listed.sort(key=lambda p: p.upload.key)
    assert [(p.upload.key, p.upload.upload_id) for p in listed] == [("t/u/a", first.upload_id), ("t/u/b", second.upload_id)]
    assert all(p.initiated.tzinfo is not None for p in listed)
    store.abort(first)
    store.complete(second, [store.upload_part(second, 1, b"done")])
    assert list(store.uploads("t/")) == [] and [p.upload.upload_id for p in store.uploads()] == [elsewhere.upload_id]
    store.abort(elsewhere)


# -- copy and restore ----------------------------------------------------------------------------------------------


def test_copy_keeps_or_replaces_metadata_and_sets_the_class(backend: Backend) -> None:
    store = backend.store
    store.put("t/src", b"source bytes", metadata={"owner": "lab"})
    store.copy("t/src", "t/kept")
    assert (store.head("t/kept").metadata, store.head("t/kept").storage_class) == ({"owner": "lab"}, "STANDARD")
    store.copy("t/src", "t/replaced", storage_class="GLACIER_IR", metadata={"owner": "other"}, metadata_directive="REPLACE")
    head = store.head("t/replaced")
    assert (head.metadata, head.storage_class, head.size) == ({"owner": "other"}, "GLACIER_IR", 12)
    assert store.get("t/replaced").read() == b"source bytes"
    with pytest.raises(StoreError) as info:  # onto itself, changing nothing
        store.copy("t/src", "t/src")
    assert info.value.code == "InvalidRequest" and info.value.status == 400
    with pytest.raises(ValueError, match="REPLACE"):
        store.copy("t/src", "t/x", metadata={"a": "b"})


def test_a_copy_from_another_bucket_if_unchanged_with_its_checksum_computed(backend: Backend) -> None:
    store, other, data = backend.store, backend.other, b"copied across buckets" * 50
    put = other.put("src/a", data, metadata={"owner": "lab"})
    done = store.copy("src/a", "dst/a", source_store=other, if_match=put.etag, storage_class="GLACIER_IR", checksum_algorithm="SHA256")
    head = store.head("dst/a", checksum=True)
    if store.capabilities.checksums_copies:
        assert done.checksums == {"SHA256": sha256(data)} and head.checksums["SHA256"] == sha256(data)
    else:  # declared: the copy answers none, and keeps another algorithm's
        assert done.checksums == {} and "SHA256" not in head.checksums
    assert (head.size, head.storage_class, head.metadata, head.etag) == (len(data), "GLACIER_IR", {"owner": "lab"}, done.etag)
    assert store.get("dst/a", if_match=done.etag).read() == data
    with pytest.raises(StoreError) as info:
        store.get("dst/a", if_match=put.etag if put.etag != done.etag else "0" * 32)
    assert (info.value.code, info.value.status, info.value.kind) == ("PreconditionFailed", 412, "request")
    other.put("src/a", b"changed since")
    if store.capabilities.checks_copy_source:
        with pytest.raises(StoreError) as info:
            store.copy("src/a", "dst/b", source_store=other, if_match=put.etag)
        assert (info.value.code, info.value.status, info.value.kind) == ("PreconditionFailed", 412, "request")
    else:  # declared: the copy is made from whatever the source holds now
        store.copy("src/a", "dst/b", source_store=other, if_match=put.etag)
        assert store.get("dst/b").read() == b"changed since"
    with pytest.raises(ValueError, match="server-side only"):
        store.copy("src/a", "dst/c", source_store=object())  # type: ignore[arg-type]


def test_a_copy_in_parts_keeps_tags_and_headers(backend: Backend) -> None:
    store, other = backend.store, backend.other
    data = bytes(range(256)) * (6 * MiB // 256) + b"tail"
    source = other.put("src/big", data)
    tags, headers = {"project": "x", "keep": "yes"}, {"ContentType": "application/x-raw", "CacheControl": "no-cache"}
    upload = store.begin("dst/big", storage_class="GLACIER_IR", metadata={"origin": "scan"}, tags=tags, headers=headers)
    ranges = [(0, 5 * MiB - 1), (5 * MiB, len(data) - 1)]
    parts = [store.upload_part_copy(upload, n, "src/big", r, source_store=other, if_match=source.etag) for n, r in enumerate(ranges, 1)]
    expected = [sha256(data[a : b + 1]) for a, b in ranges] if store.capabilities.checksums_part_copies else [None, None]
    assert [p.checksum for p in parts] == expected
    store.complete(upload, parts)
    head = store.head("dst/big", checksum=True)
    assert (head.size, head.storage_class, head.metadata, head.etag.endswith("-2")) == (len(data), "GLACIER_IR", {"origin": "scan"}, True)
    assert head.headers == headers and store.tags("dst/big") == tags
    assert store.get("dst/big").read() == data
    store.copy("dst/big", "dst/again")  # CopyObject keeps tags and headers itself
    assert store.tags("dst/again") == tags and store.head("dst/again").headers == headers
    late = store.begin("dst/late")
    if store.capabilities.checks_copy_source:
        with pytest.raises(StoreError) as info:
            store.upload_part_copy(late, 1, "src/big", (0, 9), source_store=other, if_match="0" * 32)
        assert info.value.code == "PreconditionFailed"
    store.abort(late)


def test_archived_objects_need_a_restore_before_reading(backend: Backend) -> None:
    store = backend.store
    store.put("t/cold", b"archived bytes", storage_class="GLACIER")
    store.put("t/warm", b"standard bytes")
    if not store.capabilities.enforces_restore:  # declared: classes are labels, and RestoreObject is refused
        assert store.get("t/cold").read() == b"archived bytes"
        with pytest.raises(StoreError) as refused:
            store.restore("t/cold", days=1)
        assert refused.value.status in (405, 501) and not isinstance(refused.value, NotFound)
        return
    with pytest.raises(NotRestored) as info:
        store.get("t/cold")
    assert (info.value.code, info.value.status, info.value.transient) == ("InvalidObjectState", 403, False)
    with pytest.raises(NotRestored):
        store.copy("t/cold", "t/thawed")
    with pytest.raises(NotRestored):  # only archived classes restore
        store.restore("t/warm", days=1)
    assert store.restore("t/cold", days=2, tier="Bulk") == "started"
    status = store.head("t/cold").restore
    assert status is not None and not status.ongoing and status.expiry is not None
    assert store.get("t/cold").read() == b"archived bytes"
    assert store.restore("t/cold", days=5) == "extended"
    store.copy("t/cold", "t/thawed")
    assert store.head("t/thawed").storage_class == "STANDARD" and store.head("t/cold").storage_class == "GLACIER"


def test_server_side_encryption_is_recorded(backend: Backend) -> None:
    store = backend.store
    store.put("t/enc", b"secret-ish", sse="AES256")
    reported = store.head("t/enc").sse
    assert reported == "AES256" if store.capabilities.reports_sse else reported is None


# -- list, presign, delete -----------------------------------------------------------------------------------------


def test_listing_pages_past_a_thousand_keys_and_many_deletes(backend: Backend) -> None:
    store = backend.store
    keys = [f"t/many/{i:05d}" for i in range(1005)]
    put_many(store, keys + ["t/other"])
    listed = [e.key for e in store.list("t/many/")]
    assert listed == keys  # S3's order, over two pages of 1,000
    assert [e.key for e in store.list("t/many/", start_after=keys[1001])] == keys[1002:]
    store.delete(keys[:1002])  # two DeleteObjects requests
    assert [e.key for e in store.list("t/")] == keys[1002:] + ["t/other"]


def test_small_pages_prefixes_and_entries(backend: Backend) -> None:
    store = backend.store
    for key in ("p/ab", "p/a/c", "p/a-", "p/b/d/e", "q/a", "p/aa"):
        store.put(key, key.encode(), storage_class="GLACIER_IR" if key == "p/aa" else "STANDARD")
    expected = ["p/a-", "p/a/c", "p/aa", "p/ab", "p/b/d/e"]  # by UTF-8 bytes: "-" < "/" < "a"
    entries = list(store.list("p/", page_size=2))
    if store.capabilities.lists_in_key_order:
        assert [e.key for e in entries] == expected
    else:  # declared: folders first (SeaweedFS walks its filer's directories)
        assert [e.key for e in entries] != expected and sorted(e.key for e in entries) == expected
        entries.sort(key=lambda e: e.key)
    assert [e.size for e in entries] == [4, 5, 4, 4, 7] and entries[2].storage_class == "GLACIER_IR"
    assert all(e.etag and e.last_modified.tzinfo is not None for e in entries)
    assert sorted(e.key for e in store.list("p/a", page_size=1)) == ["p/a-", "p/a/c", "p/aa", "p/ab"]
    assert [e.key for e in store.list("nothing/")] == []


def test_a_key_that_is_also_a_prefix(backend: Backend) -> None:
    store = backend.store
    store.put("n/a", b"file")
    if store.capabilities.keys_nest:
        store.put("n/a/b", b"nested")
        assert [e.key for e in store.list("n/")] == ["n/a", "n/a/b"]
    else:  # declared: a folder cannot also be a file
        with pytest.raises(StoreError) as info:
            store.put("n/a/b", b"nested")
        assert (info.value.code, info.value.status, info.value.kind) == ("KeyConflict", 409, "request")
        assert [e.key for e in store.list("n/")] == ["n/a"] and store.get("n/a").read() == b"file"


def test_a_presigned_url_reads_the_object(backend: Backend) -> None:
    store = backend.store
    store.put("t/shared", b"for whoever holds the link")
    url = store.presign("t/shared", expires_in=60)
    if not backend.presign_reachable:  # in-process moto: check the signed URL's form
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        assert url.split("?")[0].endswith("/t/shared") and ("Signature" in query or "X-Amz-Signature" in query)
        return
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.read() == b"for whoever holds the link"
    if store.capabilities.presign_expires:
        short = store.presign("t/shared", expires_in=1)
        time.sleep(2.1)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(short, timeout=10)
        assert info.value.code == 403
    else:
        assert url.startswith("file://")
