"""Server-side copies of ``LocalStore``: CopyObject and UploadPartCopy over files, with S3's rules.

A copy reads from this store or another ``LocalStore`` (another "bucket"); the source must be
readable (an archived object only once restored: ObjectNotInActiveTierError), still have the
ETag the caller saw when ``if_match`` is given (PreconditionFailed), and a copy onto itself must
change something (InvalidRequest), as S3 says.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from glacier_pipelines.core.objectstore import base, localfs
from glacier_pipelines.core.objectstore.base import Part, PutResult, Upload
from glacier_pipelines.core.objectstore.errors import refusal
from glacier_pipelines.core.objectstore.localfs import Temporary

if TYPE_CHECKING:
    from glacier_pipelines.core.objectstore.local import LocalStore


def _source(store: LocalStore, source_store: object, source: str, if_match: str | None, operation: str) -> tuple[str, Any, dict[str, Any]]:
    """The open source file, its path and sidecar, checked readable and unchanged."""
    src_store: LocalStore = base.check_source_store(store, source_store, type(store))  # another LocalStore
    path, f, st, meta = src_store._open(source, operation)
    meta = meta or {}
    try:
        if not src_store._readable(meta):
            raise refusal(
                "ObjectNotInActiveTierError", 403, "The source object of the COPY action is not in the active tier", operation, source
            )
        localfs.check_etag(localfs.fingerprint(st, meta.get("parts")), if_match, operation, source)
    except BaseException:
        f.close()
        raise
    return path, f, meta


def copy(
    store: LocalStore,
    source: str,
    key: str,
    *,
    storage_class: str | None,
    metadata: Mapping[str, str] | None,
    metadata_directive: Literal["COPY", "REPLACE"],
    sse: str | None,
    kms_key_id: str | None,
    bucket_key: bool | None,
    checksum_algorithm: str | None,
    source_store: object,
    if_match: str | None,
) -> PutResult:
    """Like CopyObject: the copy is STANDARD unless ``storage_class`` says otherwise, and is not restored; it keeps the
    source's tags and headers; its checksum is the source's, or one of ``checksum_algorithm`` computed over the bytes."""
    algorithm = base.check_object_args(storage_class, sse, checksum_algorithm)
    base.check_copy_args(metadata, metadata_directive)
    target = store.path(key, "CopyObject", creating=True)
    src, f, meta = _source(store, source_store, source, if_match, "CopyObject")
    with f:
        new_class = storage_class or "STANDARD"
        if (
            os.path.normpath(src) == os.path.normpath(target)
            and metadata_directive == "COPY"
            and new_class == meta.get("storage_class", "STANDARD")
            and not sse
        ):
            raise refusal(
                "InvalidRequest",
                400,
                "This copy request is illegal because it is trying to copy an object to "
                "itself without changing the object's metadata, storage class or encryption attributes.",
                "CopyObject",
                key,
            )
        recorded = meta.get("checksum")
        checksum = (recorded["algorithm"], recorded["value"]) if recorded else None
        digest = localfs.hasher(algorithm, "CopyObject", key) if algorithm else None  # S3 computes the copy's checksum anew
        extra = {**localfs.extra_of(meta), **({"bucket_key": bucket_key} if bucket_key is not None else {})}
        try:
            with Temporary(target) as tmp:
                tmp.write_body(f, digest)
                st = tmp.finish(store.durable)
                if digest is not None and algorithm:
                    checksum = (algorithm, localfs.b64(digest.digest()))
                new_meta = localfs.object_meta(
                    new_class,
                    metadata if metadata_directive == "REPLACE" else meta.get("metadata"),
                    sse or meta.get("sse"),
                    kms_key_id if sse else meta.get("kms_key_id"),
                    checksum,
                    meta.get("parts"),
                    extra,
                )
                store.install(tmp, new_meta, st)
        except OSError as exc:
            raise localfs.wrap_os(exc, "CopyObject", key) from exc
    return PutResult(etag=localfs.fingerprint(st, (new_meta or {}).get("parts")), checksums={checksum[0]: checksum[1]} if checksum else {})


def upload_part_copy(
    store: LocalStore,
    upload: Upload,
    number: int,
    source: str,
    byte_range: tuple[int, int],
    *,
    source_store: object,
    if_match: str | None,
) -> Part:
    """Part ``number`` of ``upload`` from the inclusive byte range of ``source``: the bytes go file to file."""
    base.check_part_number(number)
    base.check_range(byte_range)
    _, f, _ = _source(store, source_store, source, if_match, "UploadPartCopy")
    with f:
        size = os.fstat(f.fileno()).st_size
        start, end = byte_range
        if start >= size or end >= size:
            raise refusal("InvalidRange", 416, "The requested range is not satisfiable", "UploadPartCopy", source)
        f.seek(start)
        return store._multipart.upload_part(upload, number, Window(f, end - start + 1))


class Window:
    """At most ``remaining`` bytes of an open file, from where it stands: a ranged GET's body, or a copied part."""

    def __init__(self, f: Any, remaining: int):
        self.f, self.remaining = f, remaining

    def read(self, amount: int | None = -1) -> bytes:
        amount = self.remaining if amount is None or amount < 0 else min(amount, self.remaining)
        data = self.f.read(amount)
        self.remaining -= len(data)
        return bytes(data)

    def close(self) -> None:
        self.f.close()
