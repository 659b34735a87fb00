"""Staging a source in one pass: hash, verify, and leave the bytes where ``commit_stage`` turns them into the object.

Small files wait in a durable staged file, large ones as an open multipart upload whose
parts already carry CRC32 checksums. Only bytes that matched the request's checksum are
ever completed into an object; on a mismatch the upload is aborted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glacier_pipelines.core import checksums, staging
from glacier_pipelines.core.constants import MiB
from glacier_pipelines.core.errors import ChecksumMismatch
from glacier_pipelines.core.objectstore import BucketStores, NotFound, ObjectHead, ObjectStore, Part, PutResult, StoreError, Upload
from glacier_pipelines.core.transfer.durable import _write_durably
from glacier_pipelines.core.transfer.parts import _PartUploader, _PartWriter
from glacier_pipelines.core.transfer.uploads import TRANSFER_REFUSED, UploadSettings, abort_upload, transfer_error
from glacier_pipelines.core.transfer.verify import head_checksum, reported_checksum, same_checksum

HEAD_BYTES = 4 * MiB  # kept from the start of a large file for image probing


@dataclass
class StageResult:
    size: int
    digests: dict[str, str]  # canonical algorithm -> hex (the request's and SHA-256)
    head: bytes  # the first bytes, for image probing
    stage: dict[str, Any]  # JSON-able: where the verified bytes wait
    complete_in_head: bool = field(default=False)
    body: bytes | None = None  # the verified bytes, held in memory instead of staged (``hold_up_to``); the stage has no path yet


def stage_stream(
    chunks: Iterable[bytes],
    *,
    stores: BucketStores,
    settings: UploadSettings,
    key: str,
    algorithm: str,
    expected_checksum: str | Callable[[], str],
    staging_path: Path | str,
    metadata: dict[str, str] | None = None,
    durable: bool = True,
    multipart_gate: Any = None,
    hold_up_to: int | None = None,
) -> StageResult:
    """Read ``chunks`` once: hash, verify against ``expected_checksum`` and stage the bytes.

    ``stores`` gives the store of a bucket: ``settings.bucket``'s for a multipart upload, the staging
    bucket's for a small file staged remotely (a local staging path needs none).
    Raises ChecksumMismatch (nothing stays behind), or whatever the source or the store raised
    (the multipart upload, if any, is aborted first). ``expected_checksum`` may be a callable, asked
    once the stream has ended (a stream whose digest its producer knows only at its end). ``multipart_gate`` (a lock or
    semaphore shared by parallel callers) is held while a file streams as a multipart
    upload, so parallel staging never multiplies the memory of large files. A file of at most
    ``hold_up_to`` bytes is not staged at all: its verified bytes come back in ``body`` for the
    caller to stage (a package member appended to a segment, core/staging.py).
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
                uploader = _PartUploader(stores(settings.bucket), settings, key, metadata or {})
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
        expected = (expected_checksum() if callable(expected_checksum) else expected_checksum).lower()
        if actual != expected:
            raise ChecksumMismatch(
                f"{algorithm} of the source is {actual}, the request announced {expected} ({digest.bytes_seen} bytes read)"
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
        if hold_up_to is not None and pending_size <= hold_up_to:
            return held_result(settings.bucket, key, digests, b"".join(pending))
        staging.write(stores, str(staging_path), pending, durable, _write_durably)
        stage: dict[str, Any] = {
            "kind": "file",
            "path": str(staging_path),
            "bucket": settings.bucket,
            "key": key,
            "s3_checksum": checksums.b64(digest.digest(checksums.S3_ALGORITHM)),
        }
        return StageResult(
            size=digest.bytes_seen, digests=digests, head=_head_of(pending), stage=stage, complete_in_head=pending_size <= HEAD_BYTES
        )
    stage = {  # the same JSON-able shape: where the verified bytes wait
        "kind": "multipart",
        "bucket": settings.bucket,
        "key": key,
        "upload_id": uploader.upload_id,
        "parts": [{k: v for k, v in p.items() if not k.startswith("_")} for p in parts],
        "s3_checksum": checksums.s3_composite_crc32(p["_digest"] for p in parts),
    }
    return StageResult(size=digest.bytes_seen, digests=digests, head=head, stage=stage)


def held_result(bucket: str, key: str, digests: dict[str, str], body: bytes) -> StageResult:
    """A small file's verified bytes kept in memory for the caller to stage (``hold_up_to``): its stage has no path yet.

    ``digests``: canonical algorithm -> hex, the request's and SHA-256 (core/local_fetch.py builds one from a worker's answer).
    """
    stage = {"kind": "file", "bucket": bucket, "key": key, "s3_checksum": checksums.b64(bytes.fromhex(digests[checksums.S3_ALGORITHM]))}
    return StageResult(
        size=len(body), digests=digests, head=body[:HEAD_BYTES], stage=stage, complete_in_head=len(body) <= HEAD_BYTES, body=body
    )


def appended_result(bucket: str, key: str, digests: dict[str, str], locator: str, size: int) -> StageResult:
    """A small file's verified bytes that a fetch process appended to a segment (core/local_fetch.py): its stage names them."""
    stage = {
        "kind": "file",
        "bucket": bucket,
        "key": key,
        "s3_checksum": checksums.b64(bytes.fromhex(digests[checksums.S3_ALGORITHM])),
        "path": locator,
    }
    return StageResult(size=size, digests=digests, head=b"", stage=stage)


def _head_of(chunks: list[bytes]) -> bytes:
    """The first HEAD_BYTES of a list of chunks."""
    head = bytearray()
    for chunk in chunks:
        head += chunk[: HEAD_BYTES - len(head)]
        if len(head) >= HEAD_BYTES:
            break
    return bytes(head)


def commit_stage(
    stores: BucketStores, settings: UploadSettings, stage: dict[str, Any], metadata: dict[str, str] | None = None
) -> dict[str, Any]:
    """Turn staged, verified bytes into the object in ``stores(stage["bucket"])``; returns ``{"etag", "s3_checksum"}``.

    Safe to repeat after a crash: a multipart upload that was already completed is found by
    its checksum instead of failing with NoSuchUpload. Likewise when S3 did the work but its
    answer was lost (timeouts, resets, retries exhausted): the object is found by its checksum.
    """
    bucket, key, expected = stage["bucket"], stage["key"], stage["s3_checksum"]
    store = stores(bucket)
    done: PutResult | ObjectHead
    try:
        if stage["kind"] == "file":
            try:
                body = staging.open_read(stores, stage["path"])
            except FileNotFoundError:
                # The staged copy is removed once S3 holds it, before the catalog records the object; a
                # crash in between leaves exactly this: nothing to send, and the object already stored.
                found = _holding(store, key, expected)
                if found is None:
                    raise transfer_error(
                        f"staged copy {stage['path']} is gone and s3://{bucket}/{key} does not hold the verified bytes"
                    ) from None
                return {"etag": found.etag, "s3_checksum": expected}
            if staging.is_remote(stage["path"]):  # staged by another step, maybe on another machine: the bytes must still be those verified
                held = checksums.b64(hashlib.sha256(body.getvalue()).digest())  # type: ignore[attr-defined]
                if held != expected:
                    raise transfer_error(f"staged copy {stage['path']} changed since it was verified: SHA-256 {held}, verified {expected}")
            with body:
                done = store.put(
                    key, body, metadata=metadata or {}, checksum_algorithm="SHA256", checksum=expected, **settings.store_args()
                )
        else:
            upload, parts = _multipart(stage)
            try:
                done = store.complete(upload, parts)
            except NotFound as exc:
                if exc.code != "NoSuchUpload":
                    raise
                found_head = head_checksum(store, key)
                if not same_checksum(reported_checksum(found_head.checksums, expected), expected):
                    raise transfer_error(
                        f"multipart upload {stage['upload_id']} is gone and s3://{bucket}/{key} does not hold the verified bytes"
                    ) from exc
                done = found_head
    except StoreError as exc:
        if exc.code == TRANSFER_REFUSED:  # found wrong here, not an answer that may have been lost
            raise
        # S3 may have done the work although its answer never arrived (read timeout, reset, retries
        # exhausted): failing the request would leave an object that no result names. S3 says.
        found = _holding(store, key, expected)
        if found is None:
            raise
        done = found
    returned = reported_checksum(done.checksums, expected)
    if returned is not None and not same_checksum(returned, expected):
        raise transfer_error(f"s3://{bucket}/{key}: S3 reports checksum {returned}, expected {expected}")
    return {"etag": done.etag, "s3_checksum": expected}


def _multipart(stage: dict[str, Any]) -> tuple[Upload, list[Part]]:
    """The open upload and its parts as a multipart stage recorded them (CRC32 parts, or SHA-256 ones staged before)."""
    parts = stage["parts"]
    algorithm = next((name.removeprefix("Checksum") for name in (parts[0] if parts else {}) if name.startswith("Checksum")), None)
    upload = Upload(key=stage["key"], upload_id=stage["upload_id"], checksum_algorithm=algorithm)
    listed = [
        Part(number=p["PartNumber"], etag=str(p["ETag"]).strip('"'), checksum=p.get(f"Checksum{algorithm}") if algorithm else None)
        for p in parts
    ]
    return upload, listed


def _holding(store: ObjectStore, key: str, expected: str) -> ObjectHead | None:
    """The HEAD of ``key`` if the store holds exactly the verified bytes there (by checksum), else None."""
    try:
        found = head_checksum(store, key)
    except StoreError:
        return None
    return found if same_checksum(reported_checksum(found.checksums, expected), expected) else None


def discard_stage(stores: BucketStores, stage: dict[str, Any] | None) -> None:
    """Release what a stage holds: the staged file, or the open multipart upload."""
    if not stage:
        return
    if stage["kind"] == "file":
        if stage.get("path"):  # bytes held in memory were never staged
            staging.delete(stores, stage["path"])
    else:
        abort_upload(stores(stage["bucket"]), stage["key"], stage["upload_id"])
