"""S3 multipart uploads: the settings objects and uploads are made with, and aborting uploads nothing waits on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import ClientError

from glacier_pipelines.core import faults
from glacier_pipelines.core.constants import STORAGE_CLASSES, GiB, MiB


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
        if not 5 * MiB <= self.part_size <= 5 * GiB:
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


def abort_upload(s3: Any, bucket: str, key: str, upload_id: str) -> None:
    """Abort a multipart upload; one that is already gone is what was wanted."""
    try:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except ClientError as exc:
        if faults.error_code(exc) not in ("NoSuchUpload", "404"):
            raise


def abort_stale_uploads(
    s3: Any, bucket: str, prefix: str, keep: set[str], older_than: timedelta, now: datetime | None = None
) -> list[tuple[str, str]]:
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
