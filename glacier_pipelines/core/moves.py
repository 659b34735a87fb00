"""Server-side copies: an object changes storage class (or key) inside S3, its bytes never downloaded.

``CopyObject`` up to ``multipart_threshold`` (5 GiB, S3's limit for one copy), above it a
multipart copy (``CreateMultipartUpload``, ``UploadPartCopy`` by byte range, ``Complete``).
Both go through the storage port (core/objectstore: ``copy``, ``begin``, ``upload_part_copy``,
``complete``), from the source bucket's store into the destination's. Both keep what the object carries:

* user metadata and the system headers (Content-Type, -Encoding, -Disposition, -Language,
  Cache-Control, Expires, website redirect): ``MetadataDirective=COPY`` for CopyObject, passed
  explicitly to CreateMultipartUpload, which copies nothing by itself;
* tags: CopyObject keeps them (S3's default tagging directive), or they are read with
  GetObjectTagging and passed as ``Tagging``;
* encryption: the source's SSE-S3 or SSE-KMS settings (key id, bucket key) are passed on,
  because a copy without them takes the bucket's default instead. SSE-C objects are refused:
  their key is not ours to hold.

Every copy asks for ``ChecksumAlgorithm=SHA256``: S3 computes the SHA-256 of the whole copy
(CopyObject) or of each part and their composite (multipart; S3 offers full-object checksums
of multipart objects only for CRC algorithms). Every copy is conditional on the source's ETag
(``CopySourceIfMatch``), so the bytes copied are the bytes that were looked at or streamed.

Also here: the checksums an object can be checked against without reading it, and the one
streaming pass that reads it when the caller wants proof.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from glacier_pipelines.core import checksums, errors
from glacier_pipelines.core.constants import ARCHIVE_CLASSES, STORAGE_CLASSES, UNREADABLE_CLASSES, GiB, MiB
from glacier_pipelines.core.objectstore import NotFound, ObjectHead, ObjectStore, Part
from glacier_pipelines.core.transfer import same_checksum

COPY_OBJECT_LIMIT = 5 * GiB  # the largest source one CopyObject takes
MIN_PART = 5 * MiB
MAX_PART = 5 * GiB
MAX_PARTS = 10_000
CHUNK = 1024 * 1024
VERIFICATIONS = ("trust-s3", "stream")
_ETAG_MD5 = re.compile(r"^[0-9a-f]{32}$")


class MoveError(Exception):
    """A move that cannot or must not happen; the message says why, in words a person can act on."""


class ChecksumMismatch(MoveError, errors.ChecksumMismatch):
    """The object's bytes (or what S3 reports about them) differ from a checksum it must match."""


@dataclass(frozen=True)
class CopySettings:
    storage_class: str
    multipart_threshold: int = COPY_OBJECT_LIMIT
    part_size: int = 512 * MiB
    concurrency: int = 4

    def __post_init__(self) -> None:
        if self.storage_class not in STORAGE_CLASSES:
            raise ValueError(f"storage class {self.storage_class!r} is not one of {', '.join(STORAGE_CLASSES)}")
        if not 0 < self.multipart_threshold <= COPY_OBJECT_LIMIT:
            raise ValueError(f"the copy threshold must be between 1 byte and 5 GiB (CopyObject's limit), not {self.multipart_threshold}")
        if not MIN_PART <= self.part_size <= MAX_PART:
            raise ValueError("the copy part size must be between 5 MiB and 5 GiB (S3's limits)")
        if self.concurrency < 1:
            raise ValueError("copy concurrency must be at least 1")


@dataclass
class Reference:
    """A checksum the object must have: who says so, in which algorithm, the hex digest."""

    source: str  # announced, catalog, metadata, s3
    algorithm: str
    hex: str

    def as_dict(self) -> dict[str, str]:
        return {"reference": self.source, "algorithm": self.algorithm, "checksum": self.hex}


@dataclass
class CopyResult:
    etag: str
    s3_checksum: str  # base64 SHA-256 of the whole copy, or "<base64>-<parts>" for a multipart copy
    checksum_type: str  # FULL_OBJECT or COMPOSITE
    parts: int  # 0 for CopyObject
    requests: int  # billed PUT/COPY requests
    ranges: list[tuple[int, int]] = field(default_factory=list)

    @property
    def algorithm(self) -> str:
        return f"SHA256 ({self.checksum_type})"

    @property
    def sha256_hex(self) -> str | None:
        """The plain SHA-256 of the copy, when S3 reported one (CopyObject only)."""
        return b64_to_hex(self.s3_checksum) if self.checksum_type == "FULL_OBJECT" else None


@dataclass
class StreamResult:
    size: int
    digests: dict[str, str]  # canonical algorithm -> hex
    composite: str | None  # "<base64>-<parts>" over the copy's part ranges, when there are parts


def parse_checksum(text: str) -> tuple[str, str]:
    """``MD5:9e10...`` (any algorithm name checksums accepts) -> (canonical algorithm, lower-case hex)."""
    algorithm, sep, value = str(text).partition(":")
    if not sep:
        raise MoveError(f"checksum {text!r} must be ALGORITHM:HEX, e.g. MD5:9e107d9d372bb6826bd81d3542a419d6")
    try:
        algorithm = checksums.normalize_algorithm(algorithm)
    except ValueError as exc:
        raise MoveError(str(exc)) from None
    value = value.strip().lower()
    if len(value) != checksums.hex_length(algorithm) or not re.fullmatch(r"[0-9a-f]+", value):
        raise MoveError(f"a {algorithm} checksum has {checksums.hex_length(algorithm)} hex characters, got {value!r}")
    return algorithm, value


def b64_to_hex(value: str | None) -> str | None:
    if not value or "-" in value:
        return None
    try:
        return base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError):
        return None


def head(store: ObjectStore, key: str) -> ObjectHead | None:
    """HEAD with checksums; None when the object does not exist."""
    try:
        return store.head(key, checksum=True)
    except NotFound:
        return None


def is_multipart(h: ObjectHead) -> bool:
    return "-" in h.etag


def readable(h: ObjectHead) -> bool:
    """Whether S3 will read (GET or copy) the object now: not archived, or a restored copy is available."""
    if h.storage_class not in UNREADABLE_CLASSES:
        return True
    return h.restore is not None and not h.restore.ongoing


def s3_references(h: ObjectHead) -> list[Reference]:
    """Checksums S3 itself holds for the object and that name its whole content (no read needed)."""
    out = []
    full = h.checksum_type != "COMPOSITE" and not is_multipart(h)
    if full:
        for name, algorithm in (("SHA256", "SHA-256"), ("SHA1", "SHA-1")):
            value = b64_to_hex(h.checksums.get(name))
            if value:
                out.append(Reference("s3", algorithm, value))
    etag = h.etag.lower()
    if _ETAG_MD5.fullmatch(etag) and h.sse in (None, "AES256") and not h.sse_customer:
        out.append(Reference("s3-etag", "MD5", etag))  # the ETag of a single-part, unencrypted or SSE-S3 object is its MD5
    return out


def metadata_references(h: ObjectHead) -> list[Reference]:
    """Checksums written into the object's user metadata (this project writes ``sha256`` and the source's checksum)."""
    meta = {k.lower(): v for k, v in h.metadata.items()}
    out = []
    if re.fullmatch(r"[0-9a-f]{64}", (meta.get("sha256") or "").lower()):
        out.append(Reference("metadata", "SHA-256", meta["sha256"].lower()))
    if meta.get("source-algorithm") and meta.get("source-checksum"):
        try:
            algorithm, value = parse_checksum(f"{meta['source-algorithm']}:{meta['source-checksum']}")
            out.append(Reference("metadata", algorithm, value))
        except MoveError:
            pass
    return out


_LABELS = {
    "announced": "the announced checksum",
    "catalog": "the catalog",
    "metadata": "the object's metadata",
    "s3": "S3's own checksum",
    "s3-etag": "S3's ETag (the MD5 of a single-part object)",
}


def label(ref: Reference) -> str:
    return _LABELS.get(ref.source, ref.source)


def compare(references: Iterable[Reference], actual: dict[str, str], what: str) -> list[Reference]:
    """References whose algorithm ``actual`` has, each checked; ChecksumMismatch on the first that differs."""
    matched = []
    for ref in references:
        if ref.algorithm not in actual:
            continue
        if actual[ref.algorithm] != ref.hex:
            raise ChecksumMismatch(f"{what}: {ref.algorithm} is {actual[ref.algorithm]}, {label(ref)} says {ref.hex}")
        matched.append(ref)
    return matched


def check_references_agree(references: list[Reference], what: str) -> list[Reference]:
    """Cross-check references of the same algorithm (e.g. the catalog's SHA-256 against S3's): a disagreement is an error."""
    by_algorithm: dict[str, Reference] = {}
    matched = []
    for ref in references:
        first = by_algorithm.setdefault(ref.algorithm, ref)
        if first is ref:
            continue
        if first.hex != ref.hex:
            raise ChecksumMismatch(f"{what}: {label(first)} says {ref.algorithm} {first.hex}, {label(ref)} says {ref.hex}")
        matched += [first, ref]
    return list({id(r): r for r in matched}.values())


def part_ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    """Inclusive byte ranges of a multipart copy: parts of ``part_size``, grown so there are at most 10,000."""
    part = max(part_size, -(-size // MAX_PARTS))
    part = -(-part // MiB) * MiB
    if part > MAX_PART:
        raise MoveError(f"an object of {size} bytes cannot be copied in {MAX_PARTS} parts of at most 5 GiB")
    return [(start, min(start + part, size) - 1) for start in range(0, size, part)] or [(0, -1)]


def sse_args(h: ObjectHead) -> dict[str, Any]:
    """The source's encryption settings, to pass on (a copy without them gets the bucket's default)."""
    if h.sse_customer:
        raise MoveError(
            "the object is encrypted with a customer-provided key (SSE-C): a server-side copy needs that key, "
            "which this project does not hold"
        )
    args: dict[str, Any] = {}
    if h.sse:
        args["sse"] = h.sse
        if h.sse.startswith("aws:kms"):
            if h.kms_key_id:
                args["kms_key_id"] = h.kms_key_id
            if h.bucket_key is not None:
                args["bucket_key"] = bool(h.bucket_key)
    return args


def server_side_copy(
    source: ObjectStore,
    key: str,
    dest: ObjectStore,
    dest_key: str,
    *,
    source_head: ObjectHead,
    settings: CopySettings,
    tags: dict[str, str] | None = None,
    on_part: Callable[[], Any] | None = None,
) -> CopyResult:
    """Copy ``key`` of ``source`` (as ``source_head`` saw it) onto ``dest_key`` of ``dest`` in ``settings.storage_class``.

    ``tags`` is only needed for a multipart copy (read them with ``source.tags``); CopyObject
    copies them itself. Raises StoreError as S3 answers (``PreconditionFailed`` when the source
    changed since the HEAD); a multipart copy that fails is aborted. ``on_part`` is called after
    each copied part (the caller's claim heartbeat during a long copy).
    """
    size, etag = source_head.size, source_head.etag
    common: dict[str, Any] = {"storage_class": settings.storage_class, "checksum_algorithm": "SHA256", **sse_args(source_head)}
    if size <= settings.multipart_threshold:
        done = dest.copy(key, dest_key, source_store=source, if_match=etag, metadata_directive="COPY", **common)
        reported = done.checksums.get("SHA256")
        if reported is None:
            reported = _reported_sha256(dest, dest_key)
        if not reported:
            raise MoveError(f"S3 reported no SHA-256 for the copy {_where(dest, dest_key)}, though one was requested")
        return CopyResult(etag=done.etag, s3_checksum=reported, checksum_type="FULL_OBJECT", parts=0, requests=1)
    ranges = part_ranges(size, settings.part_size)
    upload = dest.begin(dest_key, metadata=source_head.metadata, tags=tags or None, headers=source_head.headers, **common)
    lock = threading.Lock()
    failed: list[BaseException] = []

    def copy_part(number: int, start: int, end: int) -> Part:
        with lock:
            if failed:
                raise RuntimeError("an earlier part failed")
        try:
            part = dest.upload_part_copy(upload, number, key, (start, end), source_store=source, if_match=etag)
        except BaseException as exc:
            with lock:
                failed.append(exc)
            raise
        if on_part is not None:
            on_part()
        return part

    try:
        with ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="copy-part") as pool:
            futures = [pool.submit(copy_part, n, start, end) for n, (start, end) in enumerate(ranges, 1)]
            parts = [f.result() for f in futures]
        done = dest.complete(upload, parts)
    except BaseException:
        dest.abort(upload)
        raise
    reported = done.checksums.get("SHA256") or _reported_sha256(dest, dest_key)
    if not reported:
        raise MoveError(f"S3 reported no SHA-256 for the multipart copy {_where(dest, dest_key)}, though one was requested")
    if "-" not in reported:
        reported = f"{reported}-{len(parts)}"  # moto leaves the part count out; AWS reports "<base64>-<parts>"
    return CopyResult(
        etag=done.etag,
        s3_checksum=reported,
        checksum_type="COMPOSITE",
        parts=len(parts),
        requests=len(parts) + 2,
        ranges=ranges,
    )


def _reported_sha256(store: ObjectStore, key: str) -> str | None:
    h = head(store, key)
    return h.checksums.get("SHA256") if h is not None else None


def _where(store: ObjectStore, key: str) -> str:
    bucket = getattr(store, "bucket", None)
    return f"s3://{bucket}/{key}" if bucket else f"{key!r} of {store!r}"


def copy_ranges(size: int, settings: CopySettings) -> list[tuple[int, int]]:
    """The part ranges a copy of ``size`` bytes will use (none for CopyObject)."""
    return [] if size <= settings.multipart_threshold else part_ranges(size, settings.part_size)


def copy_requests(size: int, settings: CopySettings) -> int:
    """Billed PUT/COPY requests of one copy: 1, or create + parts + complete."""
    ranges = copy_ranges(size, settings)
    return 1 if not ranges else len(ranges) + 2


def stream(store: ObjectStore, key: str, *, etag: str, algorithms: Iterable[str], ranges: list[tuple[int, int]]) -> StreamResult:
    """Read the object once (``IfMatch`` its ETag): every digest asked, plus the per-part SHA-256 composite over ``ranges``."""
    digest = checksums.MultiDigest([checksums.S3_ALGORITHM, *algorithms])
    part_digests: list[bytes] = []
    boundaries = [end for _, end in ranges]
    part = hashlib.sha256()
    position = 0
    body = store.get(key, if_match=etag)
    try:
        for chunk in body.iter_chunks(CHUNK):
            digest.update(chunk)
            view = memoryview(chunk)
            while boundaries and view:
                take = min(len(view), boundaries[0] + 1 - position)
                part.update(view[:take])
                position += take
                view = view[take:]
                if position == boundaries[0] + 1:
                    part_digests.append(part.digest())
                    part = hashlib.sha256()
                    boundaries.pop(0)
    finally:
        body.close()
    names = dict.fromkeys(checksums.normalize_algorithm(a) for a in [checksums.S3_ALGORITHM, *algorithms])
    composite = checksums.s3_composite_sha256(part_digests) if ranges else None
    return StreamResult(size=digest.bytes_seen, digests={a: digest.hexdigest(a) for a in names}, composite=composite)


def check_copy(copy: CopyResult, *, sha256_hex: str | None, composite: str | None, what: str) -> str | None:
    """Compare S3's checksum of the copy with what is known of the bytes; the message when it was compared."""
    if copy.checksum_type == "FULL_OBJECT" and sha256_hex:
        if copy.sha256_hex != sha256_hex:
            raise ChecksumMismatch(f"{what}: S3 reports SHA-256 {copy.sha256_hex} for the copy, the bytes have {sha256_hex}")
        return "S3's SHA-256 of the copy matches"
    if copy.checksum_type == "COMPOSITE" and composite:
        if not same_checksum(copy.s3_checksum, composite):
            raise ChecksumMismatch(f"{what}: S3 reports {copy.s3_checksum} for the copy, the streamed parts give {composite}")
        return "S3's composite SHA-256 of the copy matches the streamed parts"
    return None


def archive_class(storage_class: str) -> bool:
    return storage_class in ARCHIVE_CLASSES
