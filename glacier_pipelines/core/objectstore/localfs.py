"""The file-system mechanics under ``LocalStore``: atomic writes, sidecars, checksums, keys that cannot escape.

- An object is a plain file at ``<root>/<key>``: a folder of files is already a store, and
  staging keeps the layout it always had.
- Every write goes to a temporary ``.objectstore-<random>.part`` beside its target, then is
  renamed over it: a reader sees the old bytes or the new ones, never a part.
- What S3 records beyond the bytes (storage class, metadata, encryption, a checksum that the
  bytes alone do not give, multipart parts, restore state) lives in a sidecar
  ``.objectstore-<inode>.json`` beside the file. It is named by the data file's inode, which a
  rename keeps, so the sidecar is written before the rename and can never describe other bytes;
  a plain STANDARD object needs none.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import secrets
import zlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import IO, Any, Self

from glacier_pipelines.core import keys
from glacier_pipelines.core.constants import MiB
from glacier_pipelines.core.objectstore.errors import StoreError, refusal

RESERVED = ".objectstore"  # names the store keeps for itself; refused as key segments
PARTIAL_SUFFIX = ".part"
UPLOADS = f"{RESERVED}-uploads"
CHUNK = MiB


def is_reserved(name: str) -> bool:
    return name.startswith(RESERVED)


def is_partial(name: str) -> bool:
    return is_reserved(name) and name.endswith(PARTIAL_SUFFIX)


def check_key(key: str, operation: str, *, creating: bool) -> str:
    """The key, checked. Refused (InvalidKey): escapes (absolute, ``..``, backslashes), control characters,
    reserved names; when ``creating``, also a key that core/keys.py would have to rewrite, so what is listed is what was put."""
    if isinstance(key, str) and len(key.encode("utf-8", "surrogatepass")) > keys.MAX_KEY_LENGTH:
        raise refusal("KeyTooLongError", 400, f"key is longer than {keys.MAX_KEY_LENGTH} bytes", operation, key[:64])
    try:
        clean = keys.sanitize_directory(key, max_length=keys.MAX_KEY_LENGTH)
    except keys.InvalidKey as exc:
        raise refusal("InvalidKey", 400, f"key {key!r} is refused: {exc}", operation, key) from None
    if not clean or key.endswith("/"):
        raise refusal("InvalidKey", 400, f"key {key!r} names no object", operation, key)
    segments = clean.split("/")
    reserved = [s for s in segments if is_reserved(s)]
    if reserved and (creating or reserved != segments[-1:] or not is_partial(segments[-1])):
        raise refusal("InvalidKey", 400, f"key {key!r}: names starting with {RESERVED!r} belong to the store", operation, key)
    if creating and clean != key:
        raise refusal("InvalidKey", 400, f"key {key!r} is not in canonical form (it would be stored as {clean!r})", operation, key)
    return key  # reading or deleting a name on disk that no put could make (a file placed by hand) still finds that file


def object_meta(
    storage_class: str,
    metadata: Mapping[str, str] | None,
    sse: str | None,
    kms_key_id: str | None,
    checksum: tuple[str, str] | None,
    parts: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The sidecar of a new object; None when the bytes alone say everything (STANDARD, no metadata, SHA-256 or none).
    ``extra``: what S3 keeps beside and a folder has nowhere else to keep (``tags``, ``headers``, ``bucket_key``)."""
    extra = {k: v for k, v in (extra or {}).items() if v is not None and v != {}}
    meta: dict[str, Any] = {"storage_class": storage_class, "metadata": dict(metadata or {}), **extra}
    if sse:
        meta["sse"], meta["kms_key_id"] = sse, kms_key_id
    if checksum:
        meta["checksum"] = {"algorithm": checksum[0], "value": checksum[1]}
    if parts:
        meta["parts"] = parts
    plain = (
        storage_class == "STANDARD"
        and not metadata
        and not sse
        and not parts
        and not extra
        and (checksum is None or checksum[0] == "SHA256")
    )
    return None if plain else meta


# -- checksums, as S3 encodes them ------------------------------------------------------------------------------


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


def hasher(algorithm: str, operation: str, key: str) -> Any:
    """A digest of S3's ``algorithm`` (SHA256, SHA1, CRC32); CRC32C and CRC64NVME need awscrt, which is not installed."""
    if algorithm == "SHA256":
        return hashlib.sha256()
    if algorithm == "SHA1":
        return hashlib.sha1()
    if algorithm == "CRC32":
        return _Crc32()
    raise refusal("InvalidRequest", 400, f"the local store computes SHA256, SHA1 and CRC32 checksums, not {algorithm}", operation, key)


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def composite(algorithm: str, part_digests: Iterable[bytes], operation: str, key: str) -> str:
    """S3's checksum of a multipart object: the algorithm over the parts' raw digests, then ``-N``."""
    digests = list(part_digests)
    outer = hasher(algorithm, operation, key)
    outer.update(b"".join(digests))
    return f"{b64(outer.digest())}-{len(digests)}"


def file_digest(f: IO[bytes], algorithm: str, operation: str, key: str) -> bytes:
    """The digest of an open file's bytes from its start (the file already opened: what was stat-ed is what is hashed)."""
    h = hasher(algorithm, operation, key)
    f.seek(0)
    while chunk := f.read(CHUNK):
        h.update(chunk)
    return bytes(h.digest())


# -- atomic files ----------------------------------------------------------------------------------------------------


def fingerprint(st: os.stat_result, parts: int | None = None) -> str:
    """The local ETag: changes whenever the bytes are replaced, without reading them (S3's MD5 would)."""
    tag = hashlib.md5(f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}".encode(), usedforsecurity=False).hexdigest()
    return f"{tag}-{parts}" if parts else tag


def mtime(st: os.stat_result) -> datetime:
    return datetime.fromtimestamp(st.st_mtime, UTC)


def fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_SALT = secrets.token_hex(4)
_COUNTER = itertools.count()


class Temporary:
    """A ``.objectstore-<pid>-<salt><n>.part`` beside ``target``, removed unless ``commit`` renamed it into place.

    Paths are strings here: this is staging's hot path, where pathlib's parsing showed in profiles.
    """

    def __init__(self, target: str | os.PathLike[str]):
        self.target = os.fspath(target)
        self.folder = os.path.dirname(self.target)
        self.path = os.path.join(self.folder, f"{RESERVED}-{os.getpid():x}-{_SALT}{next(_COUNTER):x}{PARTIAL_SUFFIX}")
        try:
            self.file: IO[bytes] = open(self.path, "xb")  # noqa: SIM115 (closed by finish or discard)
        except FileNotFoundError:  # folders are made on first use: a mkdir per write showed in staging's profiles
            os.makedirs(self.folder, exist_ok=True)
            self.file = open(self.path, "xb")  # noqa: SIM115
        self.committed = False

    def write_body(self, body: Any, digest: Any = None) -> None:
        if isinstance(body, (bytes, bytearray, memoryview)):
            self.file.write(body)
            if digest is not None:
                digest.update(body)
            return
        while chunk := body.read(CHUNK):
            self.file.write(chunk)
            if digest is not None:
                digest.update(chunk)

    def finish(self, durable: bool) -> os.stat_result:
        """Flush (and fsync when durable); the stat of the finished bytes, whose inode names their sidecar."""
        self.file.flush()
        if durable:
            os.fsync(self.file.fileno())
        st = os.fstat(self.file.fileno())
        self.file.close()
        return st

    def commit(self, durable: bool) -> None:
        os.replace(self.path, self.target)
        self.committed = True
        if durable:
            fsync_dir(self.folder)

    def discard(self) -> None:
        if not self.file.closed:
            self.file.close()
        if not self.committed:
            unlink(self.path)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


def unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def sidecar_path(data: str, ino: int) -> str:
    return os.path.join(os.path.dirname(data), f"{RESERVED}-{ino}.json")


def read_sidecar(data: str, ino: int) -> dict[str, Any] | None:
    try:
        with open(sidecar_path(data, ino), "rb") as f:
            return dict(json.load(f))
    except FileNotFoundError:
        return None


def write_sidecar(data: str, ino: int, meta: dict[str, Any] | None, durable: bool) -> None:
    """Record ``meta`` for the bytes of inode ``ino`` (None: a plain object, so any stale sidecar of that inode goes)."""
    path = sidecar_path(data, ino)
    if meta is None:
        unlink(path)
        return
    with Temporary(path) as tmp:
        tmp.write_body(json.dumps(meta, sort_keys=True).encode())
        tmp.finish(durable)
        tmp.commit(durable)


def write_json(path: str | os.PathLike[str], value: dict[str, Any], durable: bool) -> None:
    with Temporary(path) as tmp:
        tmp.write_body(json.dumps(value, sort_keys=True).encode())
        tmp.finish(durable)
        tmp.commit(durable)


def extra_of(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The ``extra`` an object's sidecar holds, to carry over to a copy of it."""
    return {k: meta[k] for k in ("tags", "headers", "bucket_key") if k in meta}


def check_etag(etag: str, if_match: str | None, operation: str, key: str) -> None:
    """S3's If-Match (CopySourceIfMatch for a copy): the bytes must still be the ones whose ETag the caller saw."""
    if if_match is not None and if_match.strip('"') != etag:
        raise refusal("PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold", operation, key)


def wrap_os(exc: OSError, operation: str, key: str) -> StoreError:
    """A missing file is S3's NoSuchKey; a key whose folder is a file (or the reverse) a conflict; the rest as faults.py says."""
    if isinstance(exc, (FileNotFoundError, NotADirectoryError, IsADirectoryError)) and operation in (
        "GetObject",
        "HeadObject",
        "CopyObject",
        "RestoreObject",
    ):
        return refusal("NoSuchKey", 404, "The specified key does not exist.", operation, key)
    if isinstance(exc, (NotADirectoryError, IsADirectoryError, FileExistsError)):
        return refusal("KeyConflict", 409, f"{exc.strerror}: a folder of the local store and a key share the name", operation, key)
    return StoreError.wrap(exc, operation, key)
