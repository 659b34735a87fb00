"""build_tar writes members itself (one write each): the result must be a tar any reader takes, at the recorded offsets."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from glacier_pipelines.core import packaging


def _members(blobs: dict[str, bytes]) -> list[packaging.Member]:
    return [
        packaging.Member(name, name, hashlib.sha256(data).hexdigest(), f"r{i}", "MD5", "x") for i, (name, data) in enumerate(blobs.items())
    ]


def test_the_tar_reads_back_with_every_member_at_its_recorded_offset(tmp_path):
    blobs = {
        "empty": b"",
        "one-block": b"a" * 512,
        "block-and-a-byte": b"b" * 513,
        "d/" + "long-name-" * 20: b"needs a pax header for its name",  # over ustar's 100 characters
        "café/ünïcode": b"pax for non-ASCII too",
        "big": bytes(range(256)) * 300,
    }
    teed = bytearray()
    packed, sha, size = packaging.build_tar(_members(blobs), tmp_path / "p.tar", lambda m: blobs[m.path], teed.extend)
    raw = (tmp_path / "p.tar").read_bytes()
    assert bytes(teed) == raw and size == len(raw) and sha == hashlib.sha256(raw).hexdigest()
    assert size % tarfile.RECORDSIZE == 0  # the end-of-archive blocks and record padding came after the last member
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        read = {info.name: (info.offset_data, tar.extractfile(info).read()) for info in tar.getmembers()}
    assert {name: data for name, (_, data) in read.items()} == blobs
    for m in packed:
        assert read[m.name][0] == m.offset and raw[m.offset : m.offset + m.length] == blobs[m.name]
    assert packaging.verify_members(lambda offset, length: raw[offset : offset + length], packed) == []


def test_a_member_whose_bytes_changed_since_verification_is_refused(tmp_path):
    blobs = {"a": b"verified bytes"}
    members = _members(blobs)
    with pytest.raises(packaging.PackagingError, match="no longer has the verified SHA-256"):
        packaging.build_tar(members, tmp_path / "p.tar", lambda m: b"other bytes")
