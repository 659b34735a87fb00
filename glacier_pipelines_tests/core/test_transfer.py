"""Tests for glacier_pipelines.core.transfer against moto's in-process S3.

moto quirks these tests account for (checked against moto 5.2):
  * moto does not validate ``x-amz-checksum-crc32`` or ``-sha256`` against the body (see the SeaweedFS tests).
  * HEAD of a multipart object reports the composite checksum WITHOUT its ``-N`` suffix.
  * GET of a DEEP_ARCHIVE/GLACIER object is refused (InvalidObjectState): byte comparisons use STANDARD.
  * ListMultipartUploads reports a fixed ``Initiated`` date (2010-11-10).
  * CompleteMultipartUpload repeated for an object it already produced is idempotent (no NoSuchUpload),
    and for an upload that is gone moto raises a bare KeyError instead of answering NoSuchUpload:
    the tests inject the NoSuchUpload AWS would answer with a botocore ``before-call`` hook.
  * ListMultipartUploads reports StorageClass STANDARD whatever the upload was created with.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import random
import threading
import time
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws

from glacier_pipelines.core import checksums
from glacier_pipelines.core.objectstore import NotFound, S3Store, bucket_stores
from glacier_pipelines.core.transfer import (
    HEAD_BYTES,
    ChecksumMismatch,
    StoreError,
    UploadSettings,
    abort_stale_uploads,
    commit_stage,
    discard_stage,
    same_checksum,
    stage_stream,
    verify_stored,
)

MiB = 1024 * 1024
PART = 5 * MiB
BUCKET = "test-bucket"


# --------------------------------------------------------------------------- helpers


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def data_of(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def chunked(data: bytes, size: int = 333 * 1024) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def composite(data: bytes, part_size: int = PART) -> str:
    """The S3 composite SHA-256, computed independently of the code under test."""
    crcs = [zlib.crc32(data[i : i + part_size]).to_bytes(4, "big") for i in range(0, len(data), part_size)]
    return f"{b64(zlib.crc32(b''.join(crcs)).to_bytes(4, 'big'))}-{len(crcs)}"


def settings(storage_class: str = "STANDARD", **kw: Any) -> UploadSettings:
    kw.setdefault("part_size", PART)
    kw.setdefault("multipart_threshold", PART)
    kw.setdefault("max_concurrency", 2)
    return UploadSettings(bucket=BUCKET, storage_class=storage_class, **kw)


def stage(
    s3: Any,
    data: bytes | Iterator[bytes],
    tmp_path: Path,
    *,
    key: str = "k/obj",
    cfg: UploadSettings | None = None,
    algorithm: str = "MD5",
    expected: str | None = None,
    chunk: int = 333 * 1024,
):
    chunks = chunked(data, chunk) if isinstance(data, bytes) else data
    if expected is None:
        assert isinstance(data, bytes)
        expected = hashlib.new(checksums.ALGORITHMS[checksums.normalize_algorithm(algorithm)], data).hexdigest()
    return stage_stream(
        chunks,
        stores=bucket_stores(s3),
        settings=cfg or settings(),
        key=key,
        algorithm=algorithm,
        expected_checksum=expected,
        staging_path=tmp_path / "staged" / "obj.bin",
    )


def object_keys(s3: Any) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def open_uploads(s3: Any) -> list[dict[str, Any]]:
    return s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])


@functools.lru_cache(maxsize=1)
def _session() -> boto3.session.Session:
    """One botocore session for the module: its loader caches the S3 model (creating a client drops from ~0.2 s)."""
    return boto3.session.Session(botocore_session=botocore.session.get_session())


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    with mock_aws():
        client = _session().client(
            "s3", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="testing"
        )
        client.create_bucket(Bucket=BUCKET)
        yield client


# --------------------------------------------------------------------------- small files


@pytest.mark.parametrize("storage_class", ["DEEP_ARCHIVE", "GLACIER"])
def test_small_file_is_staged_locally_then_put(s3: Any, tmp_path: Path, storage_class: str) -> None:
    data = data_of(1 * MiB + 17)
    cfg = settings(storage_class)
    result = stage(s3, data, tmp_path, cfg=cfg, algorithm="md5")

    st = result.stage
    assert st["kind"] == "file"
    staged = Path(st["path"])
    assert staged.read_bytes() == data
    assert not staged.with_name(staged.name + ".part").exists()
    assert result.size == len(data)
    assert result.digests == {"MD5": hashlib.md5(data).hexdigest(), "SHA-256": hashlib.sha256(data).hexdigest()}
    assert st["s3_checksum"] == b64(hashlib.sha256(data).digest())
    assert result.head == data[:HEAD_BYTES]
    assert result.complete_in_head is True
    assert object_keys(s3) == [] and open_uploads(s3) == []

    done = commit_stage(bucket_stores(s3), cfg, st, {"sha256": result.digests["SHA-256"]})
    assert done["s3_checksum"] == st["s3_checksum"]
    assert done["etag"] == hashlib.md5(data).hexdigest()
    head = s3.head_object(Bucket=BUCKET, Key="k/obj", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == b64(hashlib.sha256(data).digest())
    assert head["StorageClass"] == storage_class
    assert head["ContentLength"] == len(data)
    assert head["Metadata"] == {"sha256": result.digests["SHA-256"]}
    assert staged.read_bytes() == data  # commit does not consume the staged file
    assert verify_stored(S3Store(s3, BUCKET), key="k/obj", s3_checksum=st["s3_checksum"], size=len(data), storage_class=storage_class) == []


def test_small_file_bytes_round_trip_standard(s3: Any, tmp_path: Path) -> None:
    data = data_of(HEAD_BYTES + 1, seed=3)  # larger than the head, still below the threshold
    result = stage(s3, data, tmp_path, algorithm="SHA-512", chunk=1000)
    assert result.stage["kind"] == "file"
    assert result.head == data[:HEAD_BYTES]
    assert result.complete_in_head is False
    commit_stage(bucket_stores(s3), settings(), result.stage)
    assert s3.get_object(Bucket=BUCKET, Key="k/obj")["Body"].read() == data


def test_empty_file(s3: Any, tmp_path: Path) -> None:
    result = stage(s3, iter([b"", b""]), tmp_path, algorithm="SHA-256", expected=hashlib.sha256(b"").hexdigest())
    assert result.stage["kind"] == "file"
    assert result.size == 0
    assert Path(result.stage["path"]).read_bytes() == b""
    assert result.head == b""
    commit_stage(bucket_stores(s3), settings(), result.stage)
    head = s3.head_object(Bucket=BUCKET, Key="k/obj", ChecksumMode="ENABLED")
    assert head["ContentLength"] == 0
    assert head["ChecksumSHA256"] == b64(hashlib.sha256(b"").digest())


def test_expected_checksum_is_case_insensitive(s3: Any, tmp_path: Path) -> None:
    data = b"abc" * 1000
    result = stage(s3, data, tmp_path, algorithm="sha1", expected=hashlib.sha1(data).hexdigest().upper())
    assert result.digests["SHA-1"] == hashlib.sha1(data).hexdigest()


def test_small_checksum_mismatch_leaves_nothing(s3: Any, tmp_path: Path) -> None:
    data = data_of(100_000)
    with pytest.raises(ChecksumMismatch, match="MD5"):
        stage(s3, data, tmp_path, expected=hashlib.md5(b"other").hexdigest())
    assert not (tmp_path / "staged" / "obj.bin").exists()
    assert not (tmp_path / "staged" / "obj.bin.part").exists()
    assert object_keys(s3) == [] and open_uploads(s3) == []


def test_unknown_algorithm_is_refused(s3: Any, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsupported checksum algorithm"):
        stage(s3, iter([b"x"]), tmp_path, algorithm="CRC32", expected="00")


# --------------------------------------------------------------------------- multipart


def test_multipart_staged_open_then_completed(s3: Any, tmp_path: Path) -> None:
    data = data_of(12 * MiB, seed=1)
    result = stage(s3, data, tmp_path, key="k/big", algorithm="SHA-1")

    st = result.stage
    assert st["kind"] == "multipart"
    assert [p["PartNumber"] for p in st["parts"]] == [1, 2, 3]
    assert [p["ChecksumCRC32"] for p in st["parts"]] == [
        b64(zlib.crc32(data[i : i + PART]).to_bytes(4, "big")) for i in range(0, len(data), PART)
    ]
    assert all(set(p) == {"PartNumber", "ETag", "ChecksumCRC32"} for p in st["parts"])  # JSON-able, no raw digests
    assert st["s3_checksum"] == composite(data)
    assert result.digests == {"SHA-1": hashlib.sha1(data).hexdigest(), "SHA-256": hashlib.sha256(data).hexdigest()}
    assert result.size == len(data)
    assert result.head == data[:HEAD_BYTES]
    assert not (tmp_path / "staged" / "obj.bin").exists()  # nothing written locally for a large file
    uploads = open_uploads(s3)
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("k/big", st["upload_id"])]
    assert object_keys(s3) == []

    done = commit_stage(bucket_stores(s3), settings(), st)
    assert done["s3_checksum"] == composite(data)
    assert done["etag"].endswith("-3")
    got = s3.get_object(Bucket=BUCKET, Key="k/big", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ChecksumCRC32"] == composite(data)
    assert open_uploads(s3) == []
    assert verify_stored(S3Store(s3, BUCKET), key="k/big", s3_checksum=st["s3_checksum"], size=len(data), storage_class="STANDARD") == []


def test_multipart_deep_archive_class_and_metadata(s3: Any, tmp_path: Path) -> None:
    data = data_of(11 * MiB, seed=2)
    cfg = settings("DEEP_ARCHIVE")
    result = stage_stream(
        chunked(data),
        stores=bucket_stores(s3),
        settings=cfg,
        key="k/deep",
        algorithm="MD5",
        expected_checksum=hashlib.md5(data).hexdigest(),
        staging_path=tmp_path / "x",
        metadata={"source-algorithm": "MD5"},
    )
    assert len(open_uploads(s3)) == 1
    commit_stage(bucket_stores(s3), cfg, result.stage)
    head = s3.head_object(Bucket=BUCKET, Key="k/deep", ChecksumMode="ENABLED")
    assert head["StorageClass"] == "DEEP_ARCHIVE"
    assert head["Metadata"] == {"source-algorithm": "MD5"}
    assert same_checksum(head["ChecksumCRC32"], composite(data))
    assert (
        verify_stored(
            S3Store(s3, BUCKET), key="k/deep", s3_checksum=result.stage["s3_checksum"], size=len(data), storage_class="DEEP_ARCHIVE"
        )
        == []
    )


def test_threshold_boundary(s3: Any, tmp_path: Path) -> None:
    at = data_of(PART, seed=4)
    result = stage(s3, at, tmp_path, key="k/at")
    assert result.stage["kind"] == "file"
    assert Path(result.stage["path"]).stat().st_size == PART

    over = at + b"!"
    result = stage(s3, over, tmp_path, key="k/over", chunk=PART)  # one chunk of exactly PART, then 1 byte
    assert result.stage["kind"] == "multipart"
    assert len(result.stage["parts"]) == 2
    assert result.stage["parts"][1]["ChecksumCRC32"] == b64(zlib.crc32(b"!").to_bytes(4, "big"))
    assert result.stage["s3_checksum"] == composite(over)
    commit_stage(bucket_stores(s3), settings(), result.stage)
    assert s3.get_object(Bucket=BUCKET, Key="k/over")["Body"].read() == over


def test_larger_threshold_than_part_size(s3: Any, tmp_path: Path) -> None:
    data = data_of(12 * MiB, seed=5)
    cfg = settings(multipart_threshold=10 * MiB)
    small = stage(s3, data[: 10 * MiB], tmp_path, key="k/s", cfg=cfg, chunk=MiB)
    assert small.stage["kind"] == "file"
    big = stage(s3, data, tmp_path, key="k/b", cfg=cfg, chunk=MiB)
    assert big.stage["kind"] == "multipart" and len(big.stage["parts"]) == 3
    assert big.stage["s3_checksum"] == composite(data)


def test_large_checksum_mismatch_aborts_upload(s3: Any, tmp_path: Path) -> None:
    data = data_of(12 * MiB, seed=6)
    with pytest.raises(ChecksumMismatch):
        stage(s3, data, tmp_path, key="k/bad", expected=hashlib.md5(b"not it").hexdigest())
    assert open_uploads(s3) == []
    assert object_keys(s3) == []
    assert not (tmp_path / "staged" / "obj.bin").exists()


def test_source_failing_mid_stream_aborts_upload(s3: Any, tmp_path: Path) -> None:
    def broken() -> Iterator[bytes]:
        yield data_of(2 * PART + 1)
        raise OSError("connection reset by source")

    with pytest.raises(OSError, match="connection reset by source"):
        stage(s3, broken(), tmp_path, expected="0" * 32)
    assert open_uploads(s3) == []
    assert object_keys(s3) == []


@pytest.mark.parametrize("error", ["client", "endpoint"])
def test_s3_failing_on_a_part_aborts_upload(s3: Any, tmp_path: Path, error: str) -> None:
    seen: list[int] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        number = int(params["query_string"]["partNumber"])
        seen.append(number)
        if number == 2:
            if error == "client":
                raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "UploadPart")
            raise EndpointConnectionError(endpoint_url="https://s3.example.invalid")

    s3.meta.events.register("before-call.s3.UploadPart", hook)
    data = data_of(16 * MiB, seed=7)
    expected_exc = ClientError if error == "client" else EndpointConnectionError
    with pytest.raises(StoreError) as info:  # the port's one error type, over what boto3 raised
        stage(s3, data, tmp_path)
    assert isinstance(info.value.__cause__, expected_exc) and info.value.transient
    assert 2 in seen
    assert open_uploads(s3) == []
    assert object_keys(s3) == []
    assert not (tmp_path / "staged" / "obj.bin").exists()


def test_s3_reporting_another_part_checksum_is_refused(s3: Any, tmp_path: Path) -> None:
    def after(parsed: dict[str, Any], **_: Any) -> None:
        parsed["ChecksumCRC32"] = b64(zlib.crc32(b"something else").to_bytes(4, "big"))

    s3.meta.events.register("after-call.s3.UploadPart", after)
    with pytest.raises(StoreError, match="part 1"):
        stage(s3, data_of(11 * MiB), tmp_path)
    assert open_uploads(s3) == []


def test_discard_stage(s3: Any, tmp_path: Path) -> None:
    small = stage(s3, b"tiny", tmp_path, key="k/small")
    big = stage(s3, data_of(11 * MiB), tmp_path, key="k/big")
    assert len(open_uploads(s3)) == 1
    discard_stage(bucket_stores(s3), small.stage)
    discard_stage(bucket_stores(s3), big.stage)
    assert not Path(small.stage["path"]).exists()
    assert open_uploads(s3) == []
    discard_stage(bucket_stores(s3), small.stage)  # repeating is harmless
    discard_stage(bucket_stores(s3), big.stage)
    discard_stage(bucket_stores(s3), None)
    assert object_keys(s3) == []


# --------------------------------------------------------------------------- commit idempotency


def test_commit_repeated_after_completion(s3: Any, tmp_path: Path) -> None:
    data = data_of(11 * MiB, seed=8)
    st = stage(s3, data, tmp_path).stage
    first = commit_stage(bucket_stores(s3), settings(), st)
    second = commit_stage(bucket_stores(s3), settings(), st)
    assert second["s3_checksum"] == first["s3_checksum"] == composite(data)
    assert s3.get_object(Bucket=BUCKET, Key="k/obj")["Body"].read() == data


def _upload_gone(s3: Any) -> None:
    """Answer CompleteMultipartUpload with NoSuchUpload, as AWS does once an upload was completed or aborted."""

    def gone(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "NoSuchUpload", "Message": "gone"}}, "CompleteMultipartUpload")

    s3.meta.events.register("before-call.s3.CompleteMultipartUpload", gone)


def test_commit_after_upload_gone_finds_object_by_checksum(s3: Any, tmp_path: Path) -> None:
    data = data_of(11 * MiB, seed=9)
    st = stage(s3, data, tmp_path).stage
    commit_stage(bucket_stores(s3), settings(), st)
    _upload_gone(s3)
    again = commit_stage(bucket_stores(s3), settings(), st)
    assert again["s3_checksum"] == composite(data)
    assert again["etag"].endswith("-3")


def test_commit_after_overwrite_raises_store_error(s3: Any, tmp_path: Path) -> None:
    data = data_of(11 * MiB, seed=10)
    st = stage(s3, data, tmp_path).stage
    commit_stage(bucket_stores(s3), settings(), st)
    other = b"other bytes"
    s3.put_object(Bucket=BUCKET, Key="k/obj", Body=other, ChecksumAlgorithm="SHA256")
    _upload_gone(s3)
    with pytest.raises(StoreError, match="does not hold the verified bytes"):
        commit_stage(bucket_stores(s3), settings(), st)
    assert s3.get_object(Bucket=BUCKET, Key="k/obj")["Body"].read() == other  # not silently restored


def test_commit_after_upload_aborted_and_no_object(s3: Any, tmp_path: Path) -> None:
    """The upload is gone and so is the object: the HEAD's 404 escapes as the port's NotFound."""
    st = stage(s3, data_of(11 * MiB), tmp_path).stage
    discard_stage(bucket_stores(s3), st)
    _upload_gone(s3)
    with pytest.raises(NotFound):
        commit_stage(bucket_stores(s3), settings(), st)
    assert object_keys(s3) == []


def test_commit_refuses_other_returned_checksum(s3: Any, tmp_path: Path) -> None:
    st = stage(s3, b"payload", tmp_path).stage

    def after(parsed: dict[str, Any], **_: Any) -> None:
        parsed["ChecksumSHA256"] = b64(hashlib.sha256(b"x").digest())

    s3.meta.events.register("after-call.s3.PutObject", after)
    with pytest.raises(StoreError, match="S3 reports checksum"):
        commit_stage(bucket_stores(s3), settings(), st)


# --------------------------------------------------------------------------- verify_stored


def test_verify_stored_problems(s3: Any, tmp_path: Path) -> None:
    data = data_of(2 * MiB, seed=11)
    cfg = settings("GLACIER_IR")
    st = stage(s3, data, tmp_path, cfg=cfg).stage
    commit_stage(bucket_stores(s3), cfg, st)
    store = S3Store(s3, BUCKET)
    args = dict(key="k/obj", s3_checksum=st["s3_checksum"], size=len(data))
    assert verify_stored(store, storage_class="GLACIER_IR", **args) == []

    wrong_size = verify_stored(store, storage_class="GLACIER_IR", **{**args, "size": len(data) + 1})
    assert len(wrong_size) == 1 and wrong_size[0].startswith("size:")

    wrong_class = verify_stored(store, storage_class="DEEP_ARCHIVE", **args)
    assert len(wrong_class) == 1 and wrong_class[0].startswith("storage class:")
    assert "GLACIER_IR" in wrong_class[0]

    missing = verify_stored(store, storage_class="GLACIER_IR", **{**args, "key": "k/none"})
    assert missing == ["object is missing"]

    s3.put_object(Bucket=BUCKET, Key="k/obj", Body=data[::-1], ChecksumAlgorithm="SHA256", StorageClass="GLACIER_IR")
    changed = verify_stored(store, storage_class="GLACIER_IR", **args)
    assert len(changed) == 1 and changed[0].startswith("checksum:")

    s3.put_object(Bucket=BUCKET, Key="k/obj", Body=b"short")  # no checksum, STANDARD, other size
    problems = verify_stored(store, storage_class="GLACIER_IR", **args)
    assert [p.split(":")[0] for p in problems] == ["checksum", "size", "storage class"]
    assert "S3 reports None" in problems[0]
    assert "S3 reports STANDARD" in problems[2]  # a missing StorageClass header means STANDARD


def test_verify_stored_other_head_error(s3: Any) -> None:
    def denied(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadObject")

    s3.meta.events.register("before-call.s3.HeadObject", denied)
    assert verify_stored(S3Store(s3, BUCKET), key="k", s3_checksum="x", size=1, storage_class="STANDARD") == ["HEAD failed: 403"]


# --------------------------------------------------------------------------- same_checksum


def test_same_checksum() -> None:
    one = b64(hashlib.sha256(b"1").digest())
    two = b64(hashlib.sha256(b"2").digest())
    assert same_checksum(one, one)
    assert same_checksum(f"{one}-3", f"{one}-3")
    assert same_checksum(one, f"{one}-3")  # moto's HEAD drops the part count
    assert not same_checksum(two, f"{one}-3")
    assert not same_checksum(f"{two}-3", f"{one}-3")
    assert not same_checksum(f"{one}-2", f"{one}-3")
    assert not same_checksum(None, one)
    assert not same_checksum(None, f"{one}-3")
    assert not same_checksum(two, one)
    assert not same_checksum(f"{one}-1", one)  # a suffix where none is expected
    assert not same_checksum("", one)


# --------------------------------------------------------------------------- abort_stale_uploads


def _real_initiated(s3: Any) -> None:
    """moto reports every upload as initiated on 2010-11-10; make it 'now' like AWS would."""

    def after(parsed: dict[str, Any], **_: Any) -> None:
        for upload in parsed.get("Uploads", []):
            upload["Initiated"] = datetime.now(timezone.utc) - timedelta(seconds=1)

    s3.meta.events.register("after-call.s3.ListMultipartUploads", after)


def test_abort_stale_uploads(s3: Any) -> None:
    _real_initiated(s3)
    keep = s3.create_multipart_upload(Bucket=BUCKET, Key="t/keep")["UploadId"]
    drop = s3.create_multipart_upload(Bucket=BUCKET, Key="t/drop")["UploadId"]
    other = s3.create_multipart_upload(Bucket=BUCKET, Key="elsewhere/x")["UploadId"]

    assert abort_stale_uploads(S3Store(s3, BUCKET), "t/", {keep}, timedelta(hours=1)) == []
    assert len(open_uploads(s3)) == 3

    aborted = abort_stale_uploads(S3Store(s3, BUCKET), "t/", {keep}, timedelta(0))
    assert aborted == [("t/drop", drop)]
    remaining = {u["UploadId"] for u in open_uploads(s3)}
    assert remaining == {keep, other}


# --------------------------------------------------------------------------- concurrency and memory


class CountingClient:
    """Delegates to a boto3 client, recording how many upload_part calls overlap."""

    def __init__(self, client: Any):
        self._client = client
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.uploaded = 0
        self.threads: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def upload_part(self, **kw: Any) -> Any:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.threads.add(threading.current_thread().name)
        try:
            time.sleep(0.05)
            return self._client.upload_part(**kw)
        finally:
            with self._lock:
                self.in_flight -= 1
                self.uploaded += len(kw["Body"])


def test_bounded_concurrency_and_memory(s3: Any, tmp_path: Path) -> None:
    counting = CountingClient(s3)
    data = data_of(8 * PART, seed=12)
    read = 0
    max_outstanding = 0

    def source() -> Iterator[bytes]:
        nonlocal read, max_outstanding
        for chunk in chunked(data, 512 * 1024):
            read += len(chunk)
            with counting._lock:
                max_outstanding = max(max_outstanding, read - counting.uploaded)
            yield chunk

    cfg = settings(max_concurrency=2)
    result = stage_stream(
        source(),
        stores=bucket_stores(counting),
        settings=cfg,
        key="k/par",
        algorithm="MD5",
        expected_checksum=hashlib.md5(data).hexdigest(),
        staging_path=tmp_path / "x",
    )
    assert len(result.stage["parts"]) == 8
    assert counting.max_in_flight == 2  # never more than max_concurrency, and it did run in parallel
    assert all(name.startswith("part") for name in counting.threads)
    # Bytes read but not yet uploaded stay within the documented bound.
    assert max_outstanding <= cfg.part_size * (cfg.max_concurrency + 2)
    commit_stage(bucket_stores(s3), cfg, result.stage)
    assert s3.get_object(Bucket=BUCKET, Key="k/par")["Body"].read() == data


def test_concurrency_one_is_sequential(s3: Any, tmp_path: Path) -> None:
    counting = CountingClient(s3)
    data = data_of(3 * PART, seed=13)
    result = stage_stream(
        chunked(data),
        stores=bucket_stores(counting),
        settings=settings(max_concurrency=1),
        key="k/seq",
        algorithm="MD5",
        expected_checksum=hashlib.md5(data).hexdigest(),
        staging_path=tmp_path / "x",
    )
    assert len(result.stage["parts"]) == 3
    assert counting.max_in_flight == 1


# --------------------------------------------------------------------------- settings and SSE


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"storage_class": "REDUCED_REDUNDANCY"}, "storage class"),
        ({"part_size": 5 * MiB - 1}, "part size"),
        ({"part_size": 5 * 1024 * MiB + 1}, "part size"),
        ({"max_concurrency": 0}, "concurrency"),
        ({"sse": "foo"}, "server-side encryption"),
    ],
)
def test_upload_settings_validation(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        UploadSettings(bucket=BUCKET, **kw)


def test_upload_settings_object_args() -> None:
    assert UploadSettings(bucket=BUCKET).object_args() == {"StorageClass": "DEEP_ARCHIVE"}
    assert UploadSettings(bucket=BUCKET, sse="").object_args() == {"StorageClass": "DEEP_ARCHIVE"}
    assert UploadSettings(bucket=BUCKET, storage_class="GLACIER", sse="AES256").object_args() == {
        "StorageClass": "GLACIER",
        "ServerSideEncryption": "AES256",
    }
    assert UploadSettings(bucket=BUCKET, sse="aws:kms", kms_key_id="alias/k").object_args() == {
        "StorageClass": "DEEP_ARCHIVE",
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "alias/k",
    }
    assert UploadSettings(bucket=BUCKET, sse="aws:kms").object_args() == {"StorageClass": "DEEP_ARCHIVE", "ServerSideEncryption": "aws:kms"}
    # a KMS key id without aws:kms is ignored
    assert UploadSettings(bucket=BUCKET, sse="AES256", kms_key_id="k").object_args() == {
        "StorageClass": "DEEP_ARCHIVE",
        "ServerSideEncryption": "AES256",
    }


@pytest.mark.parametrize("size", [1000, 11 * MiB])
def test_sse_aes256_is_requested(s3: Any, tmp_path: Path, size: int) -> None:
    cfg = settings(sse="AES256")
    data = data_of(size, seed=14)
    st = stage(s3, data, tmp_path, cfg=cfg).stage
    commit_stage(bucket_stores(s3), cfg, st)
    head = s3.head_object(Bucket=BUCKET, Key="k/obj")
    assert head["ServerSideEncryption"] == "AES256"


def test_sse_kms_is_requested(s3: Any, tmp_path: Path) -> None:
    cfg = settings(sse="aws:kms", kms_key_id="my-key")
    st = stage(s3, b"secret", tmp_path, cfg=cfg).stage
    commit_stage(bucket_stores(s3), cfg, st)
    head = s3.head_object(Bucket=BUCKET, Key="k/obj")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == "my-key"


def test_read_ahead_keeps_order_raises_the_source_error_and_stops_when_abandoned():
    import threading

    from glacier_pipelines.core.transfer import read_ahead

    assert list(read_ahead(iter([b"a", b"b", b"c"] * 50), depth=2)) == [b"a", b"b", b"c"] * 50

    def failing():
        yield b"first"
        raise OSError("connection reset by peer")

    got = []
    with pytest.raises(OSError, match="reset"):
        for chunk in read_ahead(failing()):
            got.append(chunk)
    assert got == [b"first"]

    produced = []

    def endless():
        while True:
            produced.append(1)
            yield b"x"

    reader = read_ahead(endless(), depth=3)
    assert next(reader) == b"x"
    reader.close()  # the consumer gives up: the reader thread must stop, not run forever
    count = len(produced)
    assert count <= 6 and not any(t.name == "read-ahead" and t.is_alive() for t in threading.enumerate())


def test_multidigest_in_parallel_equals_hashlib():
    import hashlib
    import os

    from glacier_pipelines.core.checksums import PARALLEL_MIN_BYTES, MultiDigest

    data = os.urandom(PARALLEL_MIN_BYTES * 3 + 17)
    md = MultiDigest(["MD5", "SHA-256", "SHA-1"])
    for start in range(0, len(data), PARALLEL_MIN_BYTES + 5):
        md.update(data[start : start + PARALLEL_MIN_BYTES + 5])
    assert md.hexdigest("MD5") == hashlib.md5(data).hexdigest()
    assert md.hexdigest("SHA-256") == hashlib.sha256(data).hexdigest()
    assert md.hexdigest("SHA-1") == hashlib.sha1(data).hexdigest() and md.bytes_seen == len(data)


def test_commit_of_a_staged_file_removed_after_upload_finds_the_object(s3: Any, tmp_path: Path) -> None:
    """The staged copy goes once S3 holds it, before the catalog records it: a crash there must not fail the rerun."""
    data = data_of(200_000, seed=12)
    st = stage(s3, data, tmp_path).stage
    assert st["kind"] == "file"
    first = commit_stage(bucket_stores(s3), settings(), st)
    Path(st["path"]).unlink()
    again = commit_stage(bucket_stores(s3), settings(), st)
    assert again == first
    s3.delete_object(Bucket=BUCKET, Key="k/obj")  # neither the staged copy nor the object: a clear error, not a success
    with pytest.raises(StoreError, match="is gone"):
        commit_stage(bucket_stores(s3), settings(), st)


# --------------------------------------------------------------------------- buffers and memory


def test_part_buffers_are_reused_across_files(s3: Any, tmp_path: Path) -> None:
    from glacier_pipelines.core import transfer

    pool = transfer._BUFFERS
    pool._free.pop(PART, None)
    for n in (1, 2):
        data = data_of(3 * PART + 5, seed=20 + n)
        result = stage_stream(
            chunked(data),
            stores=bucket_stores(s3),
            settings=settings(max_concurrency=2),
            key=f"k/reuse{n}",
            algorithm="MD5",
            expected_checksum=hashlib.md5(data).hexdigest(),
            staging_path=tmp_path / "x",
        )
        commit_stage(bucket_stores(s3), settings(), result.stage)
        assert s3.get_object(Bucket=BUCKET, Key=f"k/reuse{n}")["Body"].read() == data  # reused buffers hold no stale bytes
        kept = pool._free[PART]
        assert 1 <= len(kept) <= 3  # at most max_concurrency + 1 buffers for one file
        if n == 1:
            first = {id(b) for b in kept}
    assert {id(b) for b in kept} == first  # the second file used the same buffers, none new


def test_buffer_pool_keeps_a_bounded_number() -> None:
    from glacier_pipelines.core.transfer import _BufferPool

    pool = _BufferPool(keep=2)
    bufs = [pool.take(1024) for _ in range(4)]
    pool.give(bufs)
    assert len(pool._free[1024]) == 2
    assert pool.take(1024) is bufs[1] and pool.take(1024) is bufs[0]
    assert all(pool.take(1024) is not b for b in bufs)  # the pool is empty: a new buffer


def test_malloc_arena_cap_respects_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes

    from glacier_pipelines.core.transfer import limit_malloc_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False  # the operator's setting wins
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    glibc = hasattr(ctypes.CDLL(None), "mallopt")
    assert limit_malloc_arenas() is glibc  # applied where there is glibc, a no-op elsewhere
