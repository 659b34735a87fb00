"""Streaming transfer: one pass from source to S3, verify-then-complete, bounded memory.

``stage_stream`` reads a source once, feeding every digest, and leaves the verified bytes
"staged": small files in a durable local file, large files as an open multipart upload
whose parts already carry SHA-256 checksums. Only bytes that matched the request's checksum
are ever completed into an object (``commit_stage``); on a mismatch the upload is aborted.
Memory stays below ``part_size * (max_concurrency + 2)``: part buffers are reused.

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

from glacier_pipelines.core import checksums, faults, staging

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


def _write_durably(path: Path, data: Iterable[bytes], durable: bool = True) -> None:
    """Write, fsync and rename, so a staged file is either whole or absent after a crash.

    With ``durable=False`` the fsyncs are left to one later ``sync_staged`` over many files:
    the caller must not record the file as staged before that call returns.
    """
    tmp = path.with_name(path.name + ".part")
    try:
        f = open(tmp, "wb")
    except FileNotFoundError:  # the folder is made on first use: a mkdir per file showed in profiles
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(tmp, "wb")
    with f:
        f.writelines(data)
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

    def _upload(self, number: int, data: bytes | bytearray, done: Any) -> dict[str, Any]:
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
            if done is not None:
                done()
            self._slots.release()

    def submit(self, data: bytes | bytearray, done: Any = None) -> None:
        """Upload ``data`` as the next part; ``done()`` is called once S3 no longer needs it (buffer reuse)."""
        # Fail fast: a part that already failed makes the rest pointless.
        for f in self._futures:
            if f.done() and f.exception() is not None:
                raise f.exception()  # type: ignore[misc]
        self._slots.acquire()
        self._futures.append(self._pool.submit(self._upload, len(self._futures) + 1, data, done))

    def finish(self) -> list[dict[str, Any]]:
        try:
            return [f.result() for f in self._futures]
        finally:
            self._pool.shutdown(wait=True)

    def abort(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        abort_upload(self.s3, self.settings.bucket, self.key, self.upload_id)


M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def limit_malloc_arenas(arenas: int = 1) -> bool:
    """Cap glibc's per-thread malloc arenas, unless MALLOC_ARENA_MAX already says otherwise.

    The archive path moves large buffers between threads (source reader, hashers, part
    uploaders); with glibc's default of up to 8 arenas per core each thread's arena keeps its
    own peak: 306 MiB peak RSS for one 1 GiB file, against 209 MiB with one arena and no
    measurable CPU cost (Python's own allocator serves small objects without glibc's lock).
    Call it early in a worker process, before its threads start; returns whether it applied.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        import ctypes

        return bool(ctypes.CDLL(None).mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # not glibc: nothing to cap
        return False


class _BufferPool:
    """Part buffers kept for the next multipart file instead of being freed.

    A worker archives large file after large file: new buffers would cost fresh page faults
    every time, and each 16 MiB one freed raises glibc's dynamic mmap threshold, so later
    allocations of that size stay in the heap. Buffers are made on demand and at most
    ``keep`` per size are kept, 80 MiB at the default settings once a large file has passed.
    """

    def __init__(self, keep: int = 8):
        self._free: dict[int, list[bytearray]] = {}
        self._lock = threading.Lock()
        self.keep = keep

    def take(self, size: int) -> bytearray:
        with self._lock:
            free = self._free.get(size)
            if free:
                return free.pop()
        return bytearray(size)

    def give(self, buffers: Iterable[bytearray]) -> None:
        with self._lock:
            for buf in buffers:
                free = self._free.setdefault(len(buf), [])
                if len(free) < self.keep:
                    free.append(buf)


_BUFFERS = _BufferPool()


class _PartWriter:
    """Cuts a stream into parts in reused buffers: one copy per byte, no fresh memory per part.

    Allocating a new 16 MiB ``bytes`` per part (and growing a ``bytearray`` in front of it)
    cost two copies plus a page fault per 4 KiB, about 0.5 CPU-s per GiB on these machines.
    Here at most ``max_concurrency + 1`` buffers exist: one filling, the others uploading; a
    buffer returns to the free list when its upload has ended. Each full part is hashed as a
    whole (the stream's digests, in order) before it is handed to the uploader.
    """

    def __init__(self, uploader: _PartUploader, digest: checksums.MultiDigest, part_size: int, buffers: int):
        self.uploader, self.digest, self.part_size = uploader, digest, part_size
        self._free: queue.Queue[bytearray] = queue.Queue()
        self._made, self._limit = 0, buffers
        self._buf: bytearray | None = None
        self._view: memoryview | None = None
        self._fill = 0

    def _take(self) -> None:
        if self._free.empty() and self._made < self._limit:
            self._made += 1
            self._buf = _BUFFERS.take(self.part_size)
        else:
            self._buf = self._free.get()  # a buffer comes back as soon as one of the uploads ends
        self._view, self._fill = memoryview(self._buf), 0

    def release(self) -> None:
        """Hand every buffer back to the shared pool; only once no upload uses them any more."""
        if self._view is not None:
            self._view.release()
        held = [self._buf] if self._buf is not None else []
        while not self._free.empty():
            held.append(self._free.get())
        self._buf = self._view = None
        _BUFFERS.give(held)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        src = memoryview(data)
        while len(src):
            if self._buf is None:
                self._take()
            n = min(len(src), self.part_size - self._fill)
            self._view[self._fill : self._fill + n] = src[:n]  # type: ignore[index]
            self._fill += n
            src = src[n:]
            if self._fill == self.part_size:
                self._flush()

    def _flush(self) -> None:
        buf, view, fill = self._buf, self._view, self._fill
        self._buf = self._view = None
        assert buf is not None and view is not None
        self.digest.update(view[:fill])
        if fill == self.part_size:
            view.release()
            self.uploader.submit(buf, lambda: self._free.put(buf))
        else:  # the short last part: its own copy (a bytearray too: sent in one piece), the buffer is free again
            part = bytearray(view[:fill])
            view.release()
            self._free.put(buf)
            self.uploader.submit(part)

    def close(self) -> None:
        """Upload what is left as the last part (S3 wants at least one part, even if empty)."""
        if self._buf is not None and self._fill:
            self._flush()
        elif not self.uploader._futures:
            self.uploader.submit(b"")


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
    staging_path: Path | str,
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
    pending: list[bytes] = []  # a file still under the threshold: its chunks, not one growing buffer
    pending_size = 0
    head = b""
    uploader: _PartUploader | None = None
    writer: _PartWriter | None = None
    threshold = max(settings.multipart_threshold, 1)
    gated = False
    try:
        for chunk in chunks:
            if not chunk:
                continue
            if writer is not None:
                writer.write(chunk)
                continue
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size > threshold:
                head = _head_of(pending)
                if multipart_gate is not None:
                    multipart_gate.acquire()
                    gated = True
                uploader = _PartUploader(s3, settings, key, metadata or {})
                writer = _PartWriter(uploader, digest, settings.part_size, settings.max_concurrency + 1)
                for piece in pending:
                    writer.write(piece)
                pending = []
        if writer is None:
            for piece in pending:
                digest.update(piece)
        else:
            writer.close()
        actual = digest.hexdigest(algorithm)
        if uploader is not None:
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
        if writer is not None:
            writer.release()  # every upload has ended here: finished, or aborted
        if gated:
            multipart_gate.release()
    digests = {algorithm: actual, checksums.S3_ALGORITHM: digest.hexdigest(checksums.S3_ALGORITHM)}
    if uploader is None:
        staging.write(s3, str(staging_path), pending, durable, _write_durably)
        stage = {"kind": "file", "path": str(staging_path), "bucket": settings.bucket, "key": key,
                 "s3_checksum": checksums.b64(digest.digest(checksums.S3_ALGORITHM))}
        return StageResult(size=digest.bytes_seen, digests=digests, head=_head_of(pending), stage=stage,
                           complete_in_head=pending_size <= HEAD_BYTES)
    stage = {
        "kind": "multipart", "bucket": settings.bucket, "key": key, "upload_id": uploader.upload_id,
        "parts": [{k: v for k, v in p.items() if not k.startswith("_")} for p in parts],
        "s3_checksum": checksums.s3_composite_sha256(p["_digest"] for p in parts),
    }
    return StageResult(size=digest.bytes_seen, digests=digests, head=head, stage=stage)


def _head_of(chunks: list[bytes]) -> bytes:
    """The first HEAD_BYTES of a list of chunks."""
    head = bytearray()
    for chunk in chunks:
        head += chunk[: HEAD_BYTES - len(head)]
        if len(head) >= HEAD_BYTES:
            break
    return bytes(head)


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
                body = staging.open_read(s3, stage["path"])
            except FileNotFoundError:
                # The staged copy is removed once S3 holds it, before the catalog records the object; a
                # crash in between leaves exactly this: nothing to send, and the object already stored.
                found = _holding(s3, bucket, key, expected)
                if found is None:
                    raise StoreError(f"staged copy {stage['path']} is gone and s3://{bucket}/{key} does not hold the verified bytes")
                return {"etag": (found.get("ETag") or "").strip('"'), "s3_checksum": expected}
            if staging.is_remote(stage["path"]):  # staged by another step, maybe on another machine: the bytes must still be those verified
                held = checksums.b64(hashlib.sha256(body.getvalue()).digest())  # type: ignore[attr-defined]
                if held != expected:
                    raise StoreError(f"staged copy {stage['path']} changed since it was verified: SHA-256 {held}, verified {expected}")
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
        staging.delete(s3, stage["path"])
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
        if code in ("404", "NoSuchKey"):
            return ["object is missing"]
        if faults.classify(exc) != "request":  # S3 could not answer: no verdict on the object
            raise
        return [f"HEAD failed: {code}"]
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
