"""One streaming pass feeding several digests, and the encodings S3 uses for checksums.

The request names the algorithm its sender computed (REGARDS spells them ``MD5``,
``SHA-256``...); the catalog keeps SHA-256 of every object (deduplication across algorithms,
rebuilds, moves). S3 gets checksums in base64: SHA-256 for objects sent in one PUT (already
computed for the catalog), CRC32 per part and its composite for multipart objects (see
docs/architecture.md, "Which digests a large file costs"). All are fed from the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import zlib
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


_CONSTRUCTORS = {name: getattr(hashlib, h) for name, h in ALGORITHMS.items()}  # hashlib.md5() etc.: hashlib.new("md5") is slower


def normalize_algorithm(name: str) -> str:
    """Map ``md5``, ``sha256``, ``SHA-256`` ... to the canonical name, or raise ValueError."""
    if name in ALGORITHMS:  # already canonical: the common case, asked several times per file
        return name
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
        self._hashes = {name: _CONSTRUCTORS[name]() for name in names}
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


def crc32(data: bytes | bytearray | memoryview) -> bytes:
    """CRC32 (zlib's, the one S3 calls CRC32) as S3's 4 raw big-endian bytes; zlib releases the GIL on large buffers."""
    return zlib.crc32(data).to_bytes(4, "big")


def s3_composite_crc32(part_crcs: Iterable[bytes]) -> str:
    """The checksum S3 reports for a multipart object with CRC32 parts: CRC32 over the part CRCs, then ``-N``."""
    parts = list(part_crcs)
    return f"{b64(crc32(b''.join(parts)))}-{len(parts)}"


# S3's name of the checksum behind a base64 value, by its length (a composite's ``-N`` aside):
# objects stored before multipart parts moved to CRC32 keep their SHA-256 checksum.
_S3_ALGORITHM_BY_B64_LENGTH = {44: "SHA256", 8: "CRC32"}


def s3_checksum_algorithm(s3_checksum: str) -> str:
    """``SHA256`` or ``CRC32``: which of S3's checksums ``s3_checksum`` (base64, maybe ``-N``) is."""
    base = s3_checksum.partition("-")[0]
    try:
        return _S3_ALGORITHM_BY_B64_LENGTH[len(base)]
    except KeyError:
        raise ValueError(f"{s3_checksum!r} is neither a base64 SHA-256 nor a CRC32 checksum") from None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
