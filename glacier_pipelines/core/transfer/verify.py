"""What S3 says it holds, compared with what was verified: checksum, size and storage class."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from glacier_pipelines.core import checksums, faults


def head_checksum(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    """HEAD with checksum mode: what S3 itself says it holds."""
    return s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")


def reported_checksum(head: dict[str, Any], expected: str) -> str | None:
    """What S3 reports (a HEAD or a response) in the algorithm of ``expected``: ``ChecksumSHA256`` or ``ChecksumCRC32``.

    Multipart objects carry CRC32 composites, objects sent in one PUT (and multipart ones stored
    before the change) SHA-256; the recorded checksum says which header to read.
    """
    try:
        return head.get("Checksum" + checksums.s3_checksum_algorithm(expected))
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


def verify_stored(s3: Any, *, bucket: str, key: str, s3_checksum: str, size: int, storage_class: str) -> list[str]:
    """Problems found by reading back an object's checksum, size and class (empty when all match)."""
    try:
        head = head_checksum(s3, bucket, key)
    except ClientError as exc:
        code = faults.error_code(exc) or "?"
        if faults.is_not_found(exc):
            return ["object is missing"]
        if faults.classify(exc) != "request":  # S3 could not answer: no verdict on the object
            raise
        return [f"HEAD failed: {code}"]
    problems = []
    reported = reported_checksum(head, s3_checksum)
    if not same_checksum(reported, s3_checksum):
        problems.append(f"checksum: S3 reports {reported}, verified {s3_checksum}")
    if head.get("ContentLength") != size:
        problems.append(f"size: S3 reports {head.get('ContentLength')}, verified {size}")
    actual_class = head.get("StorageClass") or "STANDARD"  # S3 omits the header for STANDARD
    if actual_class != storage_class:
        problems.append(f"storage class: S3 reports {actual_class}, expected {storage_class}")
    return problems
