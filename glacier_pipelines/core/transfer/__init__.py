"""Streaming transfer: one pass from source to S3, verify-then-complete, bounded memory.

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
from glacier_pipelines.core.transfer.stage import HEAD_BYTES, StageResult, commit_stage, discard_stage, stage_stream
from glacier_pipelines.core.transfer.uploads import StoreError, UploadSettings, abort_stale_uploads, abort_upload
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
    "UploadSettings",
    "_BUFFERS",
    "_BufferPool",
    "abort_stale_uploads",
    "abort_upload",
    "commit_stage",
    "discard_stage",
    "head_checksum",
    "limit_malloc_arenas",
    "read_ahead",
    "reported_checksum",
    "same_checksum",
    "stage_stream",
    "sync_staged",
    "verify_stored",
]
