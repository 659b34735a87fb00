"""s3:// sources: ``s3://bucket/key`` read with the policy's S3 client, the key taken literally."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from glacier_pipelines.core.sources.errors import SourceRefused, show
from glacier_pipelines.core.sources.stream import SourceStream

if TYPE_CHECKING:
    from glacier_pipelines.core.sources.policy import SourcePolicy

_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


def split_s3(url: str, policy: SourcePolicy) -> tuple[str, str]:
    """(bucket, key) of an s3:// URL, refused without an S3 client, a valid bucket name or a key."""
    if policy.s3_client is None:
        raise SourceRefused(url, "s3:// sources are disabled (no S3 client configured)")
    bucket, _, key = url.split("://", 1)[1].partition("/")  # key is literal, may contain '?' or '#'
    if not _BUCKET.fullmatch(bucket):
        raise SourceRefused(url, show(f"invalid S3 bucket name {bucket!r}"))
    if not key:
        raise SourceRefused(url, "s3 URL has no object key (expected s3://bucket/key)")
    return bucket, key


def open_s3(url: str, policy: SourcePolicy, bucket: str, key: str) -> SourceStream:
    """GetObject, streamed; its ContentLength is the size the stream checks."""
    client: Any = policy.s3_client
    resp = client.get_object(Bucket=bucket, Key=key)
    body = resp["Body"]
    size = resp.get("ContentLength")
    return SourceStream(url, size if isinstance(size, int) else None, body.iter_chunks, body.close)
