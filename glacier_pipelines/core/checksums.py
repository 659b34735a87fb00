"""One streaming pass feeding several digests, and the encodings S3 uses for checksums.

The request names the algorithm its sender computed (REGARDS spells them ``MD5``,
``SHA-256``...); S3 wants SHA-256 in base64, per part and as a composite for multipart
objects. Both are fed from the same bytes so a file is read once.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterable

# Canonical REGARDS-style name -> hashlib name.
ALGORITHMS: dict[str, str] = {
    "MD5": "md5",
    "SHA-1": "sha1",
    "SHA-224": "sha224",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
}
_HEX_LENGTHS = {name: hashlib.new(h).digest_size * 2 for name, h in ALGORITHMS.items()}
_ALIASES = {name.replace("-", "").upper(): name for name in ALGORITHMS}

S3_ALGORITHM = "SHA-256"


def normalize_algorithm(name: str) -> str:
    """Map ``md5``, ``sha256``, ``SHA-256`` ... to the canonical name, or raise ValueError."""
    key = str(name).strip().replace("-", "").replace("_", "").upper()
    if key not in _ALIASES:
        raise ValueError(f"unsupported checksum algorithm {name!r}; supported: {', '.join(ALGORITHMS)}")
    return _ALIASES[key]


def hex_length(algorithm: str) -> int:
    """Length in hex characters of a digest of ``algorithm``."""
    return _HEX_LENGTHS[normalize_algorithm(algorithm)]


PARALLEL_MIN_BYTES = 256 * 1024
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _hash_pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hash")
        return _POOL


class MultiDigest:
    """Feeds every chunk to each requested digest (duplicates collapse), counting bytes."""

    def __init__(self, algorithms: Iterable[str]):
        names = dict.fromkeys(normalize_algorithm(a) for a in algorithms)
        self._hashes = {name: hashlib.new(ALGORITHMS[name]) for name in names}
        self.bytes_seen = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        hashes = list(self._hashes.values())
        if len(hashes) > 1 and len(data) >= PARALLEL_MIN_BYTES:
            # hashlib releases the GIL on large buffers: the other digests run beside this one
            # (MD5 and SHA-256 of 1 MiB take about 1.5 and 0.8 ms on these machines).
            others = [_hash_pool().submit(h.update, data) for h in hashes[1:]]
            hashes[0].update(data)
            for f in others:
                f.result()
        else:
            for h in hashes:
                h.update(data)
        self.bytes_seen += len(data)

    def digest(self, algorithm: str) -> bytes:
        return self._hashes[normalize_algorithm(algorithm)].digest()

    def hexdigest(self, algorithm: str) -> str:
        return self._hashes[normalize_algorithm(algorithm)].hexdigest()


def b64(digest: bytes) -> str:
    """S3 transmits checksums as base64 of the raw digest."""
    return base64.b64encode(digest).decode("ascii")


def s3_composite_sha256(part_digests: Iterable[bytes]) -> str:
    """The checksum S3 reports for a multipart object: SHA-256 over the part digests, then ``-N``."""
    parts = list(part_digests)
    return f"{b64(hashlib.sha256(b''.join(parts)).digest())}-{len(parts)}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
