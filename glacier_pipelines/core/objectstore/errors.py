"""One error type for every store, classified by core/faults.py's rules so that S3 and the local folder fail alike.

Callers catch ``StoreError`` and read ``.transient`` (retry later) or ``.kind``; the three
subclasses exist because callers branch on them: a missing key or upload, bytes the store
refused for their checksum, an archived object read before its restore.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from glacier_pipelines.core import faults

CHECKSUM_CODES = ("BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch", "XAmzContentSHA256Mismatch")
NOT_FOUND_CODES = (*faults.NOT_FOUND_CODES, "NoSuchUpload")


class StoreError(Exception):
    """A store refused or could not answer. ``code`` is S3's error code (or the exception's name), ``status`` its HTTP status."""

    def __init__(self, message: str, *, code: str, status: int | None, kind: faults.Kind, detail: str = ""):
        super().__init__(message)
        self.code, self.status, self.kind = code, status, kind
        self.detail = detail or message  # faults.describe of what the store raised, without the operation
        self.message = ""  # S3's own Error.Message, when it gave one

    @property
    def transient(self) -> bool:
        """The service may answer next time: the work keeps its place and a later pass retries."""
        return self.kind == "transient"

    @classmethod
    def wrap(cls, exc: BaseException, operation: str, key: str | None = None) -> StoreError:
        """The StoreError (or subclass) for what boto3 or the file system raised; ``__cause__`` keeps the original."""
        if isinstance(exc, StoreError):
            return exc
        code = faults.error_code(exc) or type(exc).__name__
        target = _subclass(code)
        where = f"{operation} {key!r}" if key is not None else operation
        detail = faults.describe(exc)
        error = target(f"{where}: {detail}", code=code, status=faults.http_status(exc), kind=faults.classify(exc), detail=detail)
        error.message = faults.error_message(exc)
        error.__cause__ = exc
        return error


class NotFound(StoreError):
    """No such key (GET's NoSuchKey, HEAD's bare 404), or no such multipart upload (NoSuchUpload)."""


class ChecksumRejected(StoreError):
    """The store recomputed the checksum of what it received and it differs from the one sent (BadDigest, InvalidDigest)."""


class NotRestored(StoreError):
    """InvalidObjectState (ObjectNotInActiveTierError for a copy): an archived (GLACIER, DEEP_ARCHIVE) object read or copied before a restore, or a restore it refuses."""


def _subclass(code: str) -> type[StoreError]:
    if code in NOT_FOUND_CODES:
        return NotFound
    if code in CHECKSUM_CODES:
        return ChecksumRejected
    if code in ("InvalidObjectState", "ObjectNotInActiveTierError"):  # GET and RestoreObject; CopyObject
        return NotRestored
    return StoreError


def refusal(code: str, status: int, message: str, operation: str, key: str | None = None) -> StoreError:
    """What S3 would answer, raised by a store that is not S3: classified by the very same rules."""
    answer = ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation)
    return StoreError.wrap(answer, operation, key)
