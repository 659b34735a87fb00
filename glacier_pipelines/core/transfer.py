"""Streaming transfer: one pass from source to S3, verify-then-complete, bounded memory.

``stage_stream`` reads a source once, feeding every digest, and leaves the verified bytes
"staged": small files in a durable local file, large files as an open multipart upload
whose parts already carry SHA-256 checksums. Only bytes that matched the request's checksum
are ever completed into an object (``commit_stage``); on a mismatch the upload is aborted.
Memory stays below ``part_size * (max_concurrency + 2)``.

boto3's ``upload_fileobj`` is not used for the large path because it can neither keep the
upload open until the source checksum is known nor be aborted after the last part.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from glacier_pipelines.core import checksums

MiB = 1024 * 1024
ARCHIVE_CLASSES = ("DEEP_ARCHIVE", "GLACIER", "GLACIER_IR")
STORAGE_CLASSES = ARCHIVE_CLASSES + ("STANDARD",)
HEAD_BYTES = 4 * MiB  # kept from the start of a large file for image probing


class ChecksumMismatch(Exception):
    """The source's bytes do not have the checksum the request announced."""


class StoreError(Exception):
    """S3 did not accept or does not report what was sent."""


@dataclass(frozen=True)
class UploadSettings:
    bucket: str
    storage_class: str = "DEEP_ARCHIVE"
    part_size: int = 16 * MiB
    multipart_threshold: int = 16 * MiB
    max_concurrency: int = 4
    sse: str | None = None  # None, "AES256" or "aws:kms"
    kms_key_id: str | None = None

    def __post_init__(self) -> None:
        if self.storage_class not in STORAGE_CLASSES:
            raise ValueError(f"storage class {self.storage_class!r} is not one of {', '.join(STORAGE_CLASSES)}")
        if not 5 * MiB <= self.part_size <= 5 * 1024 * MiB:
            raise ValueError("part size must be between 5 MiB and 5 GiB (S3's limits)")
        if self.max_concurrency < 1:
            raise ValueError("max concurrency must be at least 1")
        if self.sse not in (None, "", "AES256", "aws:kms"):
            raise ValueError(f"server-side encryption {self.sse!r} is not AES256 or aws:kms")

    def object_args(self) -> dict[str, Any]:
        """Arguments shared by PutObject and CreateMultipartUpload."""
        args: dict[str, Any] = {"StorageClass": self.storage_class}
        if self.sse:
            args["ServerSideEncryption"] = self.sse
            if self.sse == "aws:kms" and self.kms_key_id:
                args["SSEKMSKeyId"] = self.kms_key_id
        return args


@dataclass
class StageResult:
    size: int
    digests: dict[str, str]  # canonical algorithm -> hex (the request's and SHA-256)
    head: bytes  # the first bytes, for image probing
    stage: dict[str, Any]  # JSON-able: where the verified bytes wait
    complete_in_head: bool = field(default=False)


def _write_durably(path: Path, data: bytes | bytearray, durable: bool = True) -> None:
    """Write, fsync and rename, so a staged file is either whole or absent after a crash.

    With ``durable=False`` the fsyncs are left to one later ``sync_staged`` over many files:
    the caller must not record the file as staged before that call returns.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_ahead(chunks: Iterable[bytes], depth: int = 4) -> Iterator[bytes]:
    """Iterate ``chunks`` on a background thread, at most ``depth`` chunks ahead.

    The source's network reads then overlap with the hashing and part uploads of the caller;
    an exception of the source is raised here, in order, and stopping early stops the reader.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    done, stop = object(), threading.Event()

    def pump() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        q.put(chunk, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # handed to the consumer, which raises it
            q.put(exc)

    reader = threading.Thread(target=pump, name="read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)


def sync_staged(paths: Iterable[str | Path]) -> None:
    """Make files written with ``durable=False`` (and their renames) durable, in one pass.

    One ``syncfs`` of the staging file system replaces a journal commit per file (about 3 ms
    each on these disks); where syncfs is unavailable, each file and folder is fsynced.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        return
    if _syncfs(paths[0].parent):
        return
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    for folder in {p.parent for p in paths}:
        _fsync_dir(folder)


def _syncfs(folder: Path) -> bool:
    """Linux syncfs(2) on the file system holding ``folder`` (the standard library has no wrapper)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return False
    fd = os.open(folder, os.O_RDONLY)
    try:
        return fn(fd) == 0
    finally:
        os.close(fd)


class _PartUploader:
    """Uploads parts on a small thread pool, never holding more than ``max_concurrency`` in flight."""

    def __init__(self, s3: Any, settings: UploadSettings, key: str, metadata: dict[str, str]):
        self.s3, self.settings, self.key = s3, settings, key
        resp = s3.create_multipart_upload(
            Bucket=settings.bucket, Key=key, ChecksumAlgorithm="SHA256", Metadata=metadata, **settings.object_args()
        )
        self.upload_id: str = resp["UploadId"]
        self._pool = ThreadPoolExecutor(max_workers=settings.max_concurrency, thread_name_prefix="part")
        self._slots = threading.Semaphore(settings.max_concurrency)
        self._futures: list[Future[dict[str, Any]]] = []

    def _upload(self, number: int, data: bytes) -> dict[str, Any]:
        try:
            digest = hashlib.sha256(data).digest()  # hashlib releases the GIL: parts hash in parallel
            resp = self.s3.upload_part(
                Bucket=self.settings.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data,
                ChecksumAlgorithm="SHA256", ChecksumSHA256=checksums.b64(digest),
            )
            returned = resp.get("ChecksumSHA256")
            if returned is not None and returned != checksums.b64(digest):
                raise StoreError(f"part {number}: S3 reports checksum {returned}, sent {checksums.b64(digest)}")
            return {"PartNumber": number, "ETag": resp["ETag"], "ChecksumSHA256": checksums.b64(digest), "_digest": digest}
        finally:
            self._slots.release()

    def submit(self, data: bytes) -> None:
        # Fail fast: a part that already failed makes the rest pointless.
        for f in self._futures:
            if f.done() and f.exception() is not None:
                raise f.exception()  # type: ignore[misc]
        self._slots.acquire()
        self._futures.append(self._pool.submit(self._upload, len(self._futures) + 1, data))

    def finish(self) -> list[dict[str, Any]]:
        try:
            return [f.result() for f in self._futures]
        finally:
            self._pool.shutdown(wait=True)

    def abort(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        abort_upload(self.s3, self.settings.bucket, self.key, self.upload_id)


def abort_upload(s3: Any, bucket: str, key: str, upload_id: str) -> None:
    try:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("NoSuchUpload", "404"):
            raise


def stage_stream(
    chunks: Iterable[bytes],
    *,
    s3: Any,
    settings: UploadSettings,
    key: str,
    algorithm: str,
    expected_checksum: str,
    staging_path: Path,
    metadata: dict[str, str] | None = None,
    durable: bool = True,
    multipart_gate: Any = None,
) -> StageResult:
    """Read ``chunks`` once: hash, verify against ``expected_checksum`` and stage the bytes.

    Raises ChecksumMismatch (nothing stays behind), or whatever the source or S3 raised
    (the multipart upload, if any, is aborted first). ``multipart_gate`` (a lock or
    semaphore shared by parallel callers) is held while a file streams as a multipart
    upload, so parallel staging never multiplies the memory of large files.
    """
    algorithm = checksums.normalize_algorithm(algorithm)
    digest = checksums.MultiDigest([algorithm, checksums.S3_ALGORITHM])
    buf = bytearray()
    head = b""
    uploader: _PartUploader | None = None
    threshold = max(settings.multipart_threshold, 1)
    gated = False
    try:
        for chunk in chunks:
            if not chunk:
                continue
            digest.update(chunk)
            buf += chunk
            if uploader is None and len(buf) > threshold:
                head = bytes(buf[:HEAD_BYTES])
                if multipart_gate is not None:
                    multipart_gate.acquire()
                    gated = True
                uploader = _PartUploader(s3, settings, key, metadata or {})
            if uploader is not None:
                while len(buf) >= settings.part_size:
                    with memoryview(buf) as view:  # one copy into the part, not two (a slice would copy first)
                        part = bytes(view[: settings.part_size])
                    del buf[: settings.part_size]
                    uploader.submit(part)
                    del part
        actual = digest.hexdigest(algorithm)
        if uploader is not None:
            if buf or not uploader._futures:
                uploader.submit(bytes(buf))
            buf = bytearray()
            parts = uploader.finish()
        if actual != expected_checksum.lower():
            raise ChecksumMismatch(
                f"{algorithm} of the source is {actual}, the request announced {expected_checksum.lower()} "
                f"({digest.bytes_seen} bytes read)"
            )
    except BaseException:
        if uploader is not None:
            uploader.abort()
        raise
    finally:
        if gated:
            multipart_gate.release()
    digests = {algorithm: actual, checksums.S3_ALGORITHM: digest.hexdigest(checksums.S3_ALGORITHM)}
    if uploader is None:
        _write_durably(staging_path, buf, durable)
        stage = {"kind": "file", "path": str(staging_path), "bucket": settings.bucket, "key": key,
                 "s3_checksum": checksums.b64(digest.digest(checksums.S3_ALGORITHM))}
        return StageResult(size=digest.bytes_seen, digests=digests, head=bytes(buf[:HEAD_BYTES]), stage=stage,
                           complete_in_head=len(buf) <= HEAD_BYTES)
    stage = {
        "kind": "multipart", "bucket": settings.bucket, "key": key, "upload_id": uploader.upload_id,
        "parts": [{k: v for k, v in p.items() if not k.startswith("_")} for p in parts],
        "s3_checksum": checksums.s3_composite_sha256(p["_digest"] for p in parts),
    }
    return StageResult(size=digest.bytes_seen, digests=digests, head=head, stage=stage)


def commit_stage(s3: Any, settings: UploadSettings, stage: dict[str, Any], metadata: dict[str, str] | None = None) -> dict[str, Any]:
    """Turn staged, verified bytes into the object; returns ``{"etag", "s3_checksum"}``.

    Safe to repeat after a crash: a multipart upload that was already completed is found by
    its checksum instead of failing with NoSuchUpload. Likewise when S3 did the work but its
    answer was lost (timeouts, resets, retries exhausted): the object is found by its checksum.
    """
    bucket, key, expected = stage["bucket"], stage["key"], stage["s3_checksum"]
    try:
        if stage["kind"] == "file":
            try:
                body = open(stage["path"], "rb")
            except FileNotFoundError:
                # The staged copy is removed once S3 holds it, before the catalog records the object; a
                # crash in between leaves exactly this: nothing to send, and the object already stored.
                found = _holding(s3, bucket, key, expected)
                if found is None:
                    raise StoreError(f"staged copy {stage['path']} is gone and s3://{bucket}/{key} does not hold the verified bytes")
                return {"etag": (found.get("ETag") or "").strip('"'), "s3_checksum": expected}
            with body:
                resp = s3.put_object(Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm="SHA256", ChecksumSHA256=expected,
                                     Metadata=metadata or {},
                                     **settings.object_args())
        else:
            parts = stage["parts"]
            try:
                resp = s3.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=stage["upload_id"], MultipartUpload={"Parts": parts}
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                    raise
                found = head_checksum(s3, bucket, key)
                if not same_checksum(found.get("ChecksumSHA256"), expected):
                    raise StoreError(f"multipart upload {stage['upload_id']} is gone and s3://{bucket}/{key} "
                                     "does not hold the verified bytes") from exc
                resp = found
    except (ClientError, BotoCoreError):
        # S3 may have done the work although its answer never arrived (read timeout, reset, retries
        # exhausted): failing the request would leave an object that no result names. S3 says.
        found = _holding(s3, bucket, key, expected)
        if found is None:
            raise
        resp = found
    returned = resp.get("ChecksumSHA256")
    if returned is not None and not same_checksum(returned, expected):
        raise StoreError(f"s3://{bucket}/{key}: S3 reports checksum {returned}, expected {expected}")
    return {"etag": (resp.get("ETag") or "").strip('"'), "s3_checksum": expected}


def _holding(s3: Any, bucket: str, key: str, expected: str) -> dict[str, Any] | None:
    """The HEAD of ``key`` if S3 holds exactly the verified bytes there (by checksum), else None."""
    try:
        found = head_checksum(s3, bucket, key)
    except (ClientError, BotoCoreError):
        return None
    return found if same_checksum(found.get("ChecksumSHA256"), expected) else None


def discard_stage(s3: Any, stage: dict[str, Any] | None) -> None:
    """Release what a stage holds: the local file, or the open multipart upload."""
    if not stage:
        return
    if stage["kind"] == "file":
        Path(stage["path"]).unlink(missing_ok=True)
    else:
        abort_upload(s3, stage["bucket"], stage["key"], stage["upload_id"])


def head_checksum(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    """HEAD with checksum mode: what S3 itself says it holds."""
    return s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")


def same_checksum(reported: str | None, expected: str) -> bool:
    """Compare S3's reported SHA-256 with ours; a composite may be reported without its ``-N``.

    AWS and SeaweedFS report composites as ``<base64>-<parts>``; moto drops the suffix on
    HEAD. The digest itself must always match exactly.
    """
    if reported is None:
        return False
    if reported == expected:
        return True
    base, _, parts = expected.partition("-")
    return bool(parts) and reported == base


def verify_stored(s3: Any, *, bucket: str, key: str, s3_checksum: str, size: int, storage_class: str) -> list[str]:
    """Problems found by reading back an object's checksum, size and class (empty when all match)."""
    try:
        head = head_checksum(s3, bucket, key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "?")
        return [f"HEAD failed: {code}" if code not in ("404", "NoSuchKey") else "object is missing"]
    problems = []
    reported = head.get("ChecksumSHA256")
    if not same_checksum(reported, s3_checksum):
        problems.append(f"checksum: S3 reports {reported}, verified {s3_checksum}")
    if head.get("ContentLength") != size:
        problems.append(f"size: S3 reports {head.get('ContentLength')}, verified {size}")
    actual_class = head.get("StorageClass") or "STANDARD"  # S3 omits the header for STANDARD
    if actual_class != storage_class:
        problems.append(f"storage class: S3 reports {actual_class}, expected {storage_class}")
    return problems


def abort_stale_uploads(s3: Any, bucket: str, prefix: str, keep: set[str], older_than: timedelta,
                        now: datetime | None = None) -> list[tuple[str, str]]:
    """Abort multipart uploads under ``prefix`` that nothing waits on and that are older than ``older_than`` (at ``now``)."""
    cutoff = (now or datetime.now(timezone.utc)) - older_than
    aborted = []
    paginator = s3.get_paginator("list_multipart_uploads")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
            if upload["UploadId"] in keep or upload["Initiated"] > cutoff:
                continue
            abort_upload(s3, bucket, upload["Key"], upload["UploadId"])
            aborted.append((upload["Key"], upload["UploadId"]))
    return aborted
