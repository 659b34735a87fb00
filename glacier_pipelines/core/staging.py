"""Where verified small files wait for a later step or run: a local folder, or a prefix in an S3 bucket.

A staged file is named by a *locator*: a local path, or ``s3://bucket/key``. The local folder
(``$GLACIER_HOME/staging``) is the embedded default. ``GLACIER_STAGING_URL=s3://bucket/prefix``
puts staged bytes where every worker can read them (STANDARD class), so no step depends on
another step's local disk: with the Celery or Kubernetes executors each step may run on
another machine, and package members staged in one run are packed by a later one.

Every function takes the locator and decides by its form, so a stage recorded in the catalog
is always released where it was written, whatever the configuration is now.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from glacier_pipelines.core import checksums

SCHEME = "s3://"


def is_remote(locator: str) -> bool:
    return str(locator).startswith(SCHEME)


def split(locator: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key)."""
    parts = urlsplit(locator)
    return parts.netloc, parts.path.lstrip("/")


@dataclass(frozen=True)
class StagingArea:
    """The root staged files go under: a local folder, or ``s3://bucket/prefix``."""

    root: str

    @classmethod
    def from_setting(cls, url: str | None, local_default: Path) -> StagingArea:
        """``GLACIER_STAGING_URL`` (empty: the local default); a URL other than s3:// or a path is refused with the reason."""
        url = (url or "").strip()
        if not url:
            return cls(str(local_default))
        if is_remote(url):
            bucket, prefix = split(url)
            if not bucket:
                raise ValueError(f"GLACIER_STAGING_URL: {url!r} names no bucket (expected s3://bucket/prefix)")
            return cls(f"{SCHEME}{bucket}/{prefix.strip('/') + '/' if prefix.strip('/') else ''}")
        if "://" in url:
            raise ValueError(f"GLACIER_STAGING_URL: {url!r} is neither s3://bucket/prefix nor a local folder")
        return cls(str(Path(url)))

    @property
    def remote(self) -> bool:
        return is_remote(self.root)

    def tenant_root(self, tenant: str) -> str:
        return f"{self.root}{tenant}/" if self.remote else str(Path(self.root) / tenant)

    def locator(self, tenant: str, pk: int, checksum: str) -> str:
        # 256 subfolders: parallel fetches creating files in one local folder queued on its lock (1.5x slower).
        name = f"{pk % 256:02x}/{pk}-{checksum}"
        return f"{self.tenant_root(tenant)}{name}" if self.remote else str(Path(self.root) / tenant / name)

    def package_file(self, tenant: str, package_id: str) -> Path:
        """Where a package's tar is built: the step that builds it also uploads it, so it is always local."""
        base = Path(tempfile.gettempdir()) / "glacier-packages" if self.remote else Path(self.root)
        return base / tenant / "packages" / f"{package_id}.tar"


def write(s3: Any, locator: str, chunks: list[bytes], durable: bool, write_local: Any) -> None:
    """Stage verified bytes: a PUT with its SHA-256 (durable once S3 answers), or the local writer."""
    if not is_remote(locator):
        write_local(Path(locator), chunks, durable)
        return
    bucket, key = split(locator)
    body = b"".join(chunks)
    s3.put_object(Bucket=bucket, Key=key, Body=body, StorageClass="STANDARD", ChecksumAlgorithm="SHA256",
                  ChecksumSHA256=checksums.b64(hashlib.sha256(body).digest()))


def read_bytes(s3: Any, locator: str) -> bytes:
    if not is_remote(locator):
        return Path(locator).read_bytes()
    bucket, key = split(locator)
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise FileNotFoundError(locator) from None
        raise


def open_read(s3: Any, locator: str) -> BinaryIO:
    """A readable file of the staged bytes (FileNotFoundError when they are gone)."""
    if not is_remote(locator):
        return open(locator, "rb")
    return io.BytesIO(read_bytes(s3, locator))


def delete(s3: Any, locator: str) -> None:
    if not is_remote(locator):
        Path(locator).unlink(missing_ok=True)
        return
    bucket, key = split(locator)
    s3.delete_object(Bucket=bucket, Key=key)


def listing(s3: Any, area: StagingArea, tenant: str) -> Iterator[tuple[str, float]]:
    """(locator, modification time as a POSIX timestamp) of every staged file of the tenant."""
    root = area.tenant_root(tenant)
    if not area.remote:
        folder = Path(root)
        if folder.is_dir():
            for path in folder.rglob("*"):
                try:
                    if path.is_file():
                        yield str(path), path.stat().st_mtime
                except FileNotFoundError:
                    continue
        return
    bucket, prefix = split(root)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            modified = item["LastModified"]
            yield f"{SCHEME}{bucket}/{item['Key']}", modified.timestamp() if isinstance(modified, datetime) else float(modified)


def staged_bytes(s3: Any, area: StagingArea, tenants: Iterable[str]) -> int:
    """What the staging area holds for these tenants, in bytes (the cost report counts remote staging as STANDARD storage)."""
    if not area.remote:
        return 0
    total = 0
    for tenant in tenants:
        bucket, prefix = split(area.tenant_root(tenant))
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            total += sum(int(item["Size"]) for item in page.get("Contents", []))
    return total
