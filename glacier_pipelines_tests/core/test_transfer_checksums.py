"""Which of S3's checksum headers an object is compared by: CRC32 composites for multipart, SHA-256 otherwise and before."""

from __future__ import annotations

import base64
import hashlib
import zlib

from glacier_pipelines.core.transfer import reported_checksum, same_checksum

SHA = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
CRC = base64.b64encode(zlib.crc32(b"x").to_bytes(4, "big")).decode()


def test_reported_checksum_reads_the_checksum_of_the_recorded_algorithm() -> None:
    head = {"SHA256": f"{SHA}-2", "CRC32": f"{CRC}-2"}
    assert reported_checksum(head, f"{SHA}-2") == f"{SHA}-2"
    assert reported_checksum(head, f"{CRC}-2") == f"{CRC}-2"
    assert reported_checksum({"SHA256": SHA}, f"{CRC}-2") is None  # a CRC32 object S3 reports no CRC32 for
    assert reported_checksum({"CRC32": CRC}, SHA) is None
    assert reported_checksum(head, "not a checksum") is None


def test_a_crc32_checksum_never_matches_a_sha256_one() -> None:
    assert not same_checksum(reported_checksum({"SHA256": f"{SHA}-2"}, f"{CRC}-2"), f"{CRC}-2")
    assert same_checksum(reported_checksum({"CRC32": CRC}, f"{CRC}-2"), f"{CRC}-2")  # moto drops the -N
