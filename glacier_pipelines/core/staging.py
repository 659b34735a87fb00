"""Where verified small files wait for a later step or run: a local folder, or a prefix in an S3 bucket.

A staged file is named by a *locator*: a local path, or ``s3://bucket/key``. The local folder
(``$GLACIER_HOME/staging``) is the embedded default. ``GLACIER_STAGING_URL=s3://bucket/prefix``
puts staged bytes where every worker can read them (STANDARD class), so no step depends on
another step's local disk: with the Celery or Kubernetes executors each step may run on
another machine, and package members staged in one run are packed by a later one.

Every function takes the locator and decides by its form, so a stage recorded in the catalog
is always released where it was written, whatever the configuration is now.

Locally, the verified small files that wait for a package are not one file each: they are
appended to a *segment*, one file per group of files recorded together (``SegmentWriter``; the
fetch processes of core/local_fetch.py append to one each per group), and named
``<segment path>#<offset>+<length>`` (core/segments.py). A segment is synced once, before its members are
recorded, and removed when no member waits in it any more (``release_segments``, or the sweep).

Both backends are ObjectStores (core/objectstore): the store of the locator's bucket (``stores``,
bucket -> ObjectStore, the caller's), or a ``LocalStore`` on the locator's folder (staged files are
plain files there, as before). Bytes that are gone raise ``FileNotFoundError`` on both; any other
fault is the port's ``StoreError`` remotely, and the OS's own exception locally (a local staged
file is a file: core/packaging.py reads it as one).
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import urlsplit

from glacier_pipelines.core import checksums, segments
from glacier_pipelines.core.segments import in_segment
from glacier_pipelines.core.objectstore import BucketStores, LocalStore, NotFound, ObjectStore, StoreError

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
        return f"{self.tenant_root(tenant)}{name}" if self.remote else f"{_local_root(self.root, tenant)}/{name}"

    def store(self, stores: BucketStores | None) -> ObjectStore:
        """The area as an ObjectStore: its bucket's (``stores`` gives it), or its folder (keys are then paths below the folder)."""
        if self.remote:
            return _remote(stores, self.root)(split(self.root)[0])
        return LocalStore(self.root)

    def segment_folder(self, tenant: str) -> Path:
        """Where a local verifier appends its segments (never used for a remote area: every member is its own object there)."""
        return Path(self.root) / tenant / "segments"

    def package_file(self, tenant: str, package_id: str) -> Path:
        """Where a package's tar is built: the step that builds it also uploads it, so it is always local."""
        base = Path(tempfile.gettempdir()) / "glacier-packages" if self.remote else Path(self.root)
        return base / tenant / "packages" / f"{package_id}.tar"


@functools.lru_cache(maxsize=256)
def _local_root(root: str, tenant: str) -> str:
    """A tenant's local staging folder as ``str(Path(...))`` spells it, built once: Path arithmetic per file led a profile."""
    return str(Path(root) / tenant)


def _remote(stores: BucketStores | None, locator: str) -> BucketStores:
    if stores is None:
        raise ValueError(f"{locator} is staged in a bucket, but no stores were given to reach it")
    return stores


def store_of(stores: BucketStores | None, locator: str, durable: bool = True) -> tuple[ObjectStore, str]:
    """The store holding ``locator`` and its key there: the bucket's and the key, or the file's folder and name."""
    if is_remote(locator):
        bucket, key = split(locator)
        return _remote(stores, locator)(bucket), key
    folder, name = os.path.split(locator)
    return LocalStore(folder, durable=durable), name


@contextmanager
def _faults(locator: str) -> Iterator[None]:
    """FileNotFoundError for bytes that are gone; remotely the StoreError, locally what the LocalStore wrapped (the OS's error)."""
    try:
        yield
    except NotFound:
        raise FileNotFoundError(locator) from None
    except StoreError as exc:
        if not is_remote(locator) and isinstance(exc.__cause__, Exception):
            raise exc.__cause__ from None
        raise


def holder(locator: str) -> str:
    """The file that holds ``locator``'s bytes: its segment, or the staged file itself."""
    found = in_segment(locator)
    return found[0] if found else str(locator)


SEGMENT_BUFFER = 1024 * 1024


class SegmentWriter:
    """Verified small files appended to one local file per group, instead of a file each.

    Creating, syncing and later unlinking an inode per 4 KiB file was most of the staging cost
    (ext4 inode allocation and the folder's lock). Bytes appended here are not staged until
    ``seal`` has synced the segment: the caller records its members only after that, so a crash
    leaves either recorded members or bytes no request points at (the sweep removes them).
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.file: BinaryIO | None = None
        self.path = ""
        self.size = 0

    def append(self, data: bytes) -> str:
        """Append one member's bytes; returns its locator (valid once sealed)."""
        if self.file is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.path = str(self.folder / f"{uuid.uuid4().hex}{segments.SUFFIX}")
            # A large buffer: one write(2) per MiB, not one per member. Each write releases the GIL, and with the
            # fetch threads busy, taking it back cost more than the write (verify step, 5,000 files: 2.34 -> 2.10 s).
            self.file = open(self.path, "xb", buffering=SEGMENT_BUFFER)  # noqa: SIM115  (held open across appends, closed by seal)
            self.size = 0
        self.file.write(data)
        locator = segments.member_locator(self.path, self.size, len(data))
        self.size += len(data)
        return locator

    def seal(self) -> None:
        """Sync the open segment and its folder entry, and close it; the next append starts a new one."""
        if self.file is None:
            return
        with self.file:
            self.file.flush()
            os.fsync(self.file.fileno())
        self.file = None
        # The new file's entry, and the folders' own (segments/, the tenant's, made on first use) up to the staging root.
        for folder in (self.folder, self.folder.parent, self.folder.parent.parent):
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def discard(self) -> None:
        """Close and remove an unsealed segment (a fault stopped its group before anything was recorded)."""
        if self.file is not None:
            self.file.close()
            self.file = None
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


def _read_member(locator: str) -> bytes:
    segment, offset, length = in_segment(locator) or ("", 0, 0)
    fd = os.open(segment, os.O_RDONLY)  # FileNotFoundError when the segment is gone, as for a staged file
    try:
        data = os.pread(fd, length, offset)
    finally:
        os.close(fd)
    if len(data) != length:
        raise OSError(f"segment {segment} holds {offset + len(data)} bytes, member {locator} needs {offset + length}")
    return data


def release_segments(stores: BucketStores | None, locators: Iterable[str], live: Iterable[str]) -> list[str]:
    """Remove the segments of ``locators`` that no ``live`` locator still points at; returns the segments removed."""
    keep = {holder(p) for p in live}
    removed = []
    for segment in sorted({found[0] for p in locators if (found := in_segment(p))} - keep):
        delete(stores, segment)
        removed.append(segment)
    return removed


def write(stores: BucketStores | None, locator: str, chunks: list[bytes], durable: bool, write_local: Any = None) -> None:
    """Stage verified bytes: remotely a PUT with its SHA-256, which the server checks (durable once S3 answers);
    locally an atomic write, fsynced unless ``durable`` is False (then the caller's ``sync_staged`` does it).

    ``write_local`` is no longer used (the LocalStore writes atomically itself); it is accepted until callers stop passing it.
    """
    store, key = store_of(stores, locator, durable)
    body = b"".join(chunks)
    with _faults(locator):
        if is_remote(locator):  # the bytes cross a network: the server recomputes their SHA-256
            store.put(key, body, storage_class="STANDARD", checksum=checksums.b64(hashlib.sha256(body).digest()))
        else:  # already verified in memory by the caller: hashing them again for a local write buys nothing
            store.put(key, body, storage_class="STANDARD")


def read_bytes(stores: BucketStores | None, locator: str) -> bytes:
    if in_segment(locator):
        return _read_member(locator)
    store, key = store_of(stores, locator)
    with _faults(locator), store.get(key) as body:
        return body.read()


def open_read(stores: BucketStores | None, locator: str) -> BinaryIO:
    """A readable file of the staged bytes (FileNotFoundError when they are gone); a remote one is read into memory."""
    if is_remote(locator) or in_segment(locator):
        return io.BytesIO(read_bytes(stores, locator))
    store, key = store_of(stores, locator)
    with _faults(locator):
        return cast(BinaryIO, store.get(key).body)  # the open file itself: seekable, as boto3 wants


def delete(stores: BucketStores | None, locator: str) -> None:
    """Remove a staged file; a member of a segment leaves with its segment (``release_segments``, the sweep)."""
    if in_segment(locator):
        return
    store, key = store_of(stores, locator)
    with _faults(locator):
        store.delete(key)


def listing(stores: BucketStores | None, area: StagingArea, tenant: str) -> Iterator[tuple[str, float]]:
    """(locator, modification time as a POSIX timestamp) of every staged file of the tenant, with the partial writes
    a killed process left in a local folder (so that the sweep removes them too)."""
    store = area.store(stores)
    if area.remote:
        bucket, prefix = split(area.tenant_root(tenant))
        with _faults(area.root):
            for entry in store.list(prefix):
                yield f"{SCHEME}{bucket}/{entry.key}", entry.last_modified.timestamp()
        return
    assert isinstance(store, LocalStore)
    with _faults(area.root):
        for entry in [*store.list(f"{tenant}/"), *store.partial_writes(f"{tenant}/")]:
            yield str(Path(area.root) / entry.key), entry.last_modified.timestamp()


def staged_bytes(stores: BucketStores | None, area: StagingArea, tenants: Iterable[str]) -> int:
    """What the staging area holds for these tenants, in bytes (the cost report counts remote staging as STANDARD storage)."""
    if not area.remote:
        return 0
    store, total = area.store(stores), 0
    for tenant in tenants:
        with _faults(area.root):
            total += sum(entry.size for entry in store.list(split(area.tenant_root(tenant))[1]))
    return total
