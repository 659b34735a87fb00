"""Multipart uploads: the settings objects and uploads are made with, and aborting uploads nothing waits on.

Every call goes through the storage port (core/objectstore), so what fails is the port's one
``StoreError``, classified by core/faults.py; ``transfer_error`` is the same type for what the
transfer itself finds wrong in a store's answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from glacier_pipelines.core.constants import STORAGE_CLASSES, GiB, MiB
from glacier_pipelines.core.objectstore import ObjectStore, StoreError, Upload

TRANSFER_REFUSED = "TransferRefused"  # the code of a StoreError the transfer raises itself


def transfer_error(message: str) -> StoreError:
    """The store's answer is not what was sent or verified: a fault of this request's bytes, which no retry makes right."""
    return StoreError(message, code=TRANSFER_REFUSED, status=None, kind="request")


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
        if not 5 * MiB <= self.part_size <= 5 * GiB:
            raise ValueError("part size must be between 5 MiB and 5 GiB (S3's limits)")
        if self.max_concurrency < 1:
            raise ValueError("max concurrency must be at least 1")
        if self.sse not in (None, "", "AES256", "aws:kms"):
            raise ValueError(f"server-side encryption {self.sse!r} is not AES256 or aws:kms")

    def object_args(self) -> dict[str, Any]:
        """The same settings as boto3 arguments of PutObject and CreateMultipartUpload (for callers still on boto3)."""
        args: dict[str, Any] = {"StorageClass": self.storage_class}
        if self.sse:
            args["ServerSideEncryption"] = self.sse
            if self.sse == "aws:kms" and self.kms_key_id:
                args["SSEKMSKeyId"] = self.kms_key_id
        return args

    def store_args(self) -> dict[str, Any]:
        """The settings as the port's ``put`` and ``begin`` take them: the class, and SSE (its KMS key with aws:kms only)."""
        sse = self.sse or None
        return {"storage_class": self.storage_class, "sse": sse, "kms_key_id": self.kms_key_id if sse == "aws:kms" else None}


def abort_upload(store: ObjectStore, key: str, upload_id: str) -> None:
    """Abort a multipart upload; one that is already gone is what was wanted."""
    store.abort(Upload(key=key, upload_id=upload_id, checksum_algorithm=None))


def abort_stale_uploads(
    store: ObjectStore, prefix: str, keep: set[str], older_than: timedelta, now: datetime | None = None
) -> list[tuple[str, str]]:
    """Abort multipart uploads under ``prefix`` that nothing waits on and that are older than ``older_than`` (at ``now``)."""
    cutoff = (now or datetime.now(timezone.utc)) - older_than
    aborted = []
    for pending in store.uploads(prefix):
        upload = pending.upload
        if upload.upload_id in keep or pending.initiated > cutoff:
            continue
        store.abort(upload)
        aborted.append((upload.key, upload.upload_id))
    return aborted
