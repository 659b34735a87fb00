"""What the store says it holds, compared with what was verified: checksum, size and storage class."""

from __future__ import annotations

from collections.abc import Mapping

from glacier_pipelines.core import checksums
from glacier_pipelines.core.objectstore import NotFound, ObjectHead, ObjectStore, StoreError


def head_checksum(store: ObjectStore, key: str) -> ObjectHead:
    """HEAD with checksum mode: what the store itself says it holds."""
    return store.head(key, checksum=True)


def reported_checksum(reported: Mapping[str, str], expected: str) -> str | None:
    """What the store reports (a HEAD's or an answer's ``checksums``) in the algorithm of ``expected``: SHA256 or CRC32.

    Multipart objects carry CRC32 composites, objects sent in one PUT (and multipart ones stored
    before the change) SHA-256; the recorded checksum says which to read.
    """
    try:
        return reported.get(checksums.s3_checksum_algorithm(expected))
    except ValueError:
        return None


def same_checksum(reported: str | None, expected: str) -> bool:
    """Compare S3's reported checksum with ours; a composite may be reported without its ``-N``.

    AWS and SeaweedFS report composites as ``<base64>-<parts>``; moto drops the suffix on
    HEAD. The digest itself must always match exactly.
    """
    if reported is None:
        return False
    if reported == expected:
        return True
    base, _, parts = expected.partition("-")
    return bool(parts) and reported == base


def verify_stored(store: ObjectStore, *, key: str, s3_checksum: str, size: int, storage_class: str) -> list[str]:
    """Problems found by reading back an object's checksum, size and class (empty when all match).

    A store that could not answer (unreachable, throttled, credentials refused) raises its StoreError: no verdict.
    """
    try:
        head = head_checksum(store, key)
    except NotFound:
        return ["object is missing"]
    except StoreError as exc:
        if exc.kind != "request":  # the store could not answer: no verdict on the object
            raise
        return [f"HEAD failed: {exc.code or '?'}"]
    problems = []
    reported = reported_checksum(head.checksums, s3_checksum)
    if not same_checksum(reported, s3_checksum):
        problems.append(f"checksum: S3 reports {reported}, verified {s3_checksum}")
    if head.size != size:
        problems.append(f"size: S3 reports {head.size}, verified {size}")
    if head.storage_class != storage_class:  # "STANDARD" when S3 omits the header
        problems.append(f"storage class: S3 reports {head.storage_class}, expected {storage_class}")
    return problems
