"""The storage port: what the archive asks of an object store, with typed answers.

S3's vocabulary throughout (keys, storage classes, ``x-amz-restore``, base64 checksums keyed
by S3's algorithm names), so that ``S3Store`` is a thin adapter and ``LocalStore`` has a
specification to follow. Anything a caller may legitimately need from S3 and that the other
stores cannot do is declared in ``Capabilities``, never guessed from the class.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import IO, Any, Literal, Protocol, Self, runtime_checkable

from glacier_pipelines.core.constants import STORAGE_CLASSES, TIERS, GiB, MiB

# Checksum algorithms as S3 names them; the value is base64 of the raw digest.
CHECKSUM_ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
SSE_ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")
MIN_PART_SIZE = 5 * MiB  # every part but the last (S3's EntityTooSmall)
MAX_PARTS = 10_000
MAX_PUT_SIZE = 5 * GiB  # one PUT or one CopyObject; beyond, multipart
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4's limit
LIST_PAGE = 1000  # S3's largest page

Body = bytes | bytearray | memoryview | IO[bytes]
RestoreOutcome = Literal["started", "in_progress", "extended"]


@dataclass(frozen=True)
class Capabilities:
    """What a store (or the server behind an S3Store) does beyond storing bytes; tests assert each flag both ways."""

    validates_checksums: bool = True  # recomputes a sent checksum and refuses a mismatch (BadDigest)
    enforces_restore: bool = True  # GLACIER/DEEP_ARCHIVE refuse GET until restored, and restore() works
    presign_expires: bool = True  # a presigned URL stops working after expires_in
    reports_sse: bool = True  # HEAD reports the server-side encryption asked for
    lists_in_key_order: bool = True  # listings in UTF-8 byte order of the keys, as S3 documents
    keys_nest: bool = True  # "a" and "a/b" may both be keys (not in a folder, where "a" cannot be a file and a folder)
    checksums_copies: bool = True  # a copy asked for a checksum algorithm answers (and keeps) that checksum of the copy
    checksums_part_copies: bool = True  # a part copied in an upload with a checksum algorithm answers the part's checksum
    checks_copy_source: bool = True  # a copy refuses a source whose ETag is not the if_match given (PreconditionFailed)
    lists_part_checksums: bool = True  # parts() answers each part's checksum (in the upload's algorithm)


AWS = Capabilities()
# moto accepts any checksum and Content-MD5, answers no checksum for a part copy, ignores CopySourceIfMatch, lists parts without checksums
MOTO = Capabilities(validates_checksums=False, checksums_part_copies=False, checks_copy_source=False, lists_part_checksums=False)
# classes are labels, 405 to RestoreObject; CopyObject keeps a CRC32 whatever algorithm is asked; ListParts without checksums
SEAWEEDFS = Capabilities(enforces_restore=False, lists_in_key_order=False, checksums_copies=False, lists_part_checksums=False)


@dataclass(frozen=True)
class RestoreStatus:
    """``x-amz-restore``: a restore is running, or a readable copy exists until ``expiry``."""

    ongoing: bool
    expiry: datetime | None = None


@dataclass(frozen=True)
class ObjectHead:
    key: str
    size: int
    etag: str  # without quotes
    storage_class: str  # "STANDARD" when S3 omits the header
    last_modified: datetime
    metadata: dict[str, str] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)  # algorithm -> base64; a composite ends in "-N"
    restore: RestoreStatus | None = None
    sse: str | None = None
    kms_key_id: str | None = None  # with sse "aws:kms"
    bucket_key: bool | None = None  # SSE-KMS with an S3 Bucket Key
    sse_customer: str | None = None  # SSE-C's algorithm: the bytes need a key the caller holds
    checksum_type: str | None = None  # FULL_OBJECT or COMPOSITE, when the store says
    headers: dict[str, Any] = field(default_factory=dict)  # system headers by boto3's names (ContentType, CacheControl...)


# The system headers a copy in parts must pass on itself (CopyObject keeps them): boto3's names.
CONTENT_HEADERS = (
    "ContentType",
    "ContentEncoding",
    "ContentDisposition",
    "ContentLanguage",
    "CacheControl",
    "Expires",
    "WebsiteRedirectLocation",
)


@dataclass(frozen=True)
class ObjectEntry:
    """One key of a listing."""

    key: str
    size: int
    etag: str
    last_modified: datetime
    storage_class: str


@dataclass(frozen=True)
class PutResult:
    etag: str
    checksums: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Upload:
    """An open multipart upload: the handle every later call takes (rebuild it from the catalog after a restart)."""

    key: str
    upload_id: str
    checksum_algorithm: str | None = "SHA256"


@dataclass(frozen=True)
class PendingUpload:
    """A multipart upload begun and neither completed nor aborted (ListMultipartUploads): what a sweep may abort."""

    upload: Upload
    initiated: datetime


@dataclass(frozen=True)
class Part:
    number: int
    etag: str
    checksum: str | None = None  # base64, of the upload's algorithm


@dataclass
class ObjectBody:
    """A streamed GET: read it, iterate it or close it (also as a context manager)."""

    key: str
    body: IO[bytes] | Any  # a file, or botocore's StreamingBody
    size: int  # bytes in this body (the range's length for a ranged GET)
    total_size: int
    etag: str
    storage_class: str
    metadata: dict[str, str] = field(default_factory=dict)
    content_range: tuple[int, int] | None = None  # inclusive, as HTTP says it

    def read(self, amount: int | None = None) -> bytes:
        return self.body.read() if amount is None else self.body.read(amount)

    def iter_chunks(self, chunk_size: int = MiB) -> Iterator[bytes]:
        while chunk := self.body.read(chunk_size):
            yield chunk

    def close(self) -> None:
        self.body.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@runtime_checkable
class ObjectStore(Protocol):
    """A bucket, or what stands in for one. Every method raises StoreError (or a subclass) for what the store answers,
    and ValueError, before any I/O, for arguments no store would take (an unknown class, a part number past 10,000...)."""

    capabilities: Capabilities

    def head(self, key: str, *, checksum: bool = False) -> ObjectHead: ...

    # if_match: the ETag the object must still have (PreconditionFailed, 412, otherwise)
    def get(self, key: str, *, byte_range: tuple[int, int | None] | None = None, if_match: str | None = None) -> ObjectBody: ...

    def tags(self, key: str) -> dict[str, str]: ...

    # content_type: the Content-Type header S3 serves the object with (a folder keeps none);
    # tags: the object's tags, as ``begin`` takes them (what a lifecycle rule may select by)
    def put(
        self,
        key: str,
        body: Body,
        *,
        storage_class: str = "STANDARD",
        metadata: Mapping[str, str] | None = None,
        sse: str | None = None,
        kms_key_id: str | None = None,
        checksum_algorithm: str | None = None,
        checksum: str | None = None,
        content_type: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> PutResult: ...

    def begin(
        self,
        key: str,
        *,
        storage_class: str = "STANDARD",
        metadata: Mapping[str, str] | None = None,
        sse: str | None = None,
        kms_key_id: str | None = None,
        checksum_algorithm: str | None = "SHA256",
        bucket_key: bool | None = None,
        tags: Mapping[str, str] | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> Upload: ...

    def upload_part(self, upload: Upload, number: int, data: bytes | bytearray | memoryview, *, checksum: str | None = None) -> Part: ...

    # One part copied from ``source`` (of ``source_store``, default this store) without its bytes passing through the caller.
    def upload_part_copy(
        self,
        upload: Upload,
        number: int,
        source: str,
        byte_range: tuple[int, int],
        *,
        source_store: ObjectStore | None = None,
        if_match: str | None = None,
    ) -> Part: ...

    def complete(self, upload: Upload, parts: Sequence[Part]) -> PutResult: ...

    def abort(self, upload: Upload) -> None: ...

    # The parts an open upload holds, by number (ListParts): what a resumed upload need not send again. Each part's
    # checksum comes with it where ``capabilities.lists_part_checksums`` says so (None otherwise).
    def parts(self, upload: Upload) -> Iterator[Part]: ...

    def uploads(self, prefix: str = "") -> Iterator[PendingUpload]: ...

    def copy(
        self,
        source: str,
        key: str,
        *,
        storage_class: str | None = None,
        metadata: Mapping[str, str] | None = None,
        metadata_directive: Literal["COPY", "REPLACE"] = "COPY",
        sse: str | None = None,
        kms_key_id: str | None = None,
        bucket_key: bool | None = None,
        checksum_algorithm: str | None = None,
        source_store: ObjectStore | None = None,
        if_match: str | None = None,
    ) -> PutResult: ...

    def restore(self, key: str, *, days: int, tier: str = "Standard") -> RestoreOutcome: ...

    def list(self, prefix: str = "", *, start_after: str | None = None, page_size: int = LIST_PAGE) -> Iterator[ObjectEntry]: ...

    def presign(self, key: str, *, expires_in: int = 3600) -> str: ...

    def delete(self, keys: str | Iterable[str]) -> None: ...


# -- argument checks shared by the implementations: a programming error is a ValueError, before any I/O --------------


def check_object_args(
    storage_class: str | None, sse: str | None, checksum_algorithm: str | None, checksum: str | None = None
) -> str | None:
    """Validate what PUT, CreateMultipartUpload and CopyObject share; returns the checksum algorithm to use."""
    if storage_class is not None and storage_class not in STORAGE_CLASSES:
        raise ValueError(f"storage class {storage_class!r} is not one of {', '.join(STORAGE_CLASSES)}")
    if sse not in (None, *SSE_ALGORITHMS):
        raise ValueError(f"server-side encryption {sse!r} is not one of {', '.join(SSE_ALGORITHMS)}")
    if checksum is not None and checksum_algorithm is None:
        checksum_algorithm = "SHA256"
    if checksum_algorithm is not None and checksum_algorithm not in CHECKSUM_ALGORITHMS:
        raise ValueError(f"checksum algorithm {checksum_algorithm!r} is not one of {', '.join(CHECKSUM_ALGORITHMS)}")
    return checksum_algorithm


def check_copy_args(metadata: Mapping[str, str] | None, metadata_directive: str) -> None:
    if metadata_directive not in ("COPY", "REPLACE"):
        raise ValueError(f"metadata directive {metadata_directive!r} is not COPY or REPLACE")
    if metadata is not None and metadata_directive == "COPY":
        raise ValueError("metadata is given but the directive is COPY (the source's metadata would be kept): use REPLACE")


def check_part_number(number: int) -> None:
    if not 1 <= number <= MAX_PARTS:
        raise ValueError(f"part number {number} is not between 1 and {MAX_PARTS}")


def check_restore_args(days: int, tier: str) -> None:
    if days < 1:
        raise ValueError(f"a restore lasts at least one day, not {days}")
    if tier not in TIERS:
        raise ValueError(f"restore tier {tier!r} is not one of {', '.join(TIERS)}")


def check_presign_args(expires_in: int) -> None:
    if not 1 <= expires_in <= MAX_PRESIGN_SECONDS:
        raise ValueError(f"a presigned URL lasts 1 to {MAX_PRESIGN_SECONDS} seconds, not {expires_in}")


def check_source_store(store: object, source_store: object, kind: type) -> Any:
    """The store a copy reads from: this one, or another of the same kind (a server-side copy cannot cross kinds)."""
    if source_store is None:
        return store
    if not isinstance(source_store, kind):
        raise ValueError(f"{store!r} copies server-side only from another {kind.__name__}, not from {source_store!r}")
    return source_store


def check_range(byte_range: tuple[int, int | None] | None) -> None:
    if byte_range is None:
        return
    start, end = byte_range
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"byte range {byte_range} is not (start, end) with 0 <= start <= end (end inclusive, or None)")


_RESTORE = re.compile(r'ongoing-request="(?P<ongoing>true|false)"(?:,\s*expiry-date="(?P<expiry>[^"]+)")?')


def parse_restore(header: str | None) -> RestoreStatus | None:
    """``ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"`` -> RestoreStatus."""
    match = _RESTORE.search(header or "")
    if not match:
        return None
    expiry = parsedate_to_datetime(match["expiry"]) if match["expiry"] else None
    return RestoreStatus(ongoing=match["ongoing"] == "true", expiry=expiry)


def put_document(store: ObjectStore, key: str, body: bytes, content_type: str = "application/x-ndjson") -> PutResult:
    """A small document written next to the bytes (ledger, manifest): STANDARD, with a SHA-256 the store checks on receipt."""
    checksum = base64.b64encode(hashlib.sha256(body).digest()).decode()
    return store.put(key, body, storage_class="STANDARD", content_type=content_type, checksum_algorithm="SHA256", checksum=checksum)
