"""Streaming transfer: one pass from source to S3, verify-then-complete, bounded memory.

Every call goes through the storage port (core/objectstore): the functions take stores, and
what fails is its ``StoreError`` (``transfer_error`` for what the transfer itself finds wrong).

``stage_stream`` reads a source once, feeding every digest, and leaves the verified bytes
"staged": small files in a durable local file, large files as an open multipart upload
whose parts already carry CRC32 checksums. Only bytes that matched the request's checksum
are ever completed into an object (``commit_stage``); on a mismatch the upload is aborted.
Memory stays below ``part_size * (max_concurrency + 2)``: part buffers are reused.

boto3's ``upload_fileobj`` is not used for the large path because it can neither keep the
upload open until the source checksum is known nor be aborted after the last part.

By concern: ``uploads`` (settings, aborting uploads), ``parts`` (read-ahead, part buffers and
uploads), ``durable`` (staged files that survive a crash), ``stage`` (stage and commit),
``verify`` (what S3 reports against what was verified).
"""

from glacier_pipelines.core.constants import ARCHIVE_CLASSES, STORAGE_CLASSES, MiB
from glacier_pipelines.core.errors import ChecksumMismatch
from glacier_pipelines.core.transfer.durable import sync_staged
from glacier_pipelines.core.transfer.parts import _BUFFERS, M_ARENA_MAX, _BufferPool, limit_malloc_arenas, read_ahead
from glacier_pipelines.core.transfer.stage import (
    HEAD_BYTES,
    StageResult,
    appended_result,
    commit_stage,
    discard_stage,
    held_result,
    stage_stream,
)
from glacier_pipelines.core.objectstore import StoreError  # the port's one error type, here for the transfer's callers
from glacier_pipelines.core.transfer.uploads import TRANSFER_REFUSED, UploadSettings, abort_stale_uploads, abort_upload, transfer_error
from glacier_pipelines.core.transfer.verify import head_checksum, reported_checksum, same_checksum, verify_stored

__all__ = [
    "ARCHIVE_CLASSES",
    "HEAD_BYTES",
    "M_ARENA_MAX",
    "STORAGE_CLASSES",
    "ChecksumMismatch",
    "MiB",
    "StageResult",
    "StoreError",
    "TRANSFER_REFUSED",
    "UploadSettings",
    "_BUFFERS",
    "_BufferPool",
    "abort_stale_uploads",
    "abort_upload",
    "commit_stage",
    "discard_stage",
    "held_result",
    "appended_result",
    "head_checksum",
    "limit_malloc_arenas",
    "read_ahead",
    "reported_checksum",
    "same_checksum",
    "stage_stream",
    "transfer_error",
    "sync_staged",
    "verify_stored",
]
