"""build_tar writes members itself (one write each): the result must be a tar any reader takes, at the recorded offsets."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_a_streamed_tar_is_the_same_bytes_without_a_local_copy(tmp_path):
    blobs = {"a": b"x" * 700, "b": b"", "c": bytes(range(256)) * 9}
    on_disk, streamed = bytearray(), bytearray()
    packed_file = packaging.build_tar(_members(blobs), tmp_path / "p.tar", lambda m: blobs[m.path], on_disk.extend)
    packed_stream = packaging.build_tar(_members(blobs), None, lambda m: blobs[m.path], streamed.extend)
    assert packed_stream == packed_file and bytes(streamed) == bytes(on_disk) == (tmp_path / "p.tar").read_bytes()
    assert list(tmp_path.iterdir()) == [tmp_path / "p.tar"]  # the streamed build wrote nothing


def test_offsets_that_drift_from_the_bytes_written_are_refused(monkeypatch):
    """Each member's offset must be the count of bytes really written before it: a writer that loses a byte stops the build."""
    blobs = {"a": b"first", "b": b"second"}
    real_write = packaging._HashingWriter.write

    def loses_a_byte(self, data):
        written = real_write(self, data)
        self.size -= 1
        return written

    monkeypatch.setattr(packaging._HashingWriter, "write", loses_a_byte)
    with pytest.raises(packaging.PackagingError, match="b: the tar's offset"):
        packaging.build_tar(_members(blobs), None, lambda m: blobs[m.path], bytearray().extend)


@settings(max_examples=300, deadline=None)
@given(
    name=st.one_of(st.text(min_size=0, max_size=120), st.text(alphabet="abc/._-0123456789", min_size=95, max_size=105)),
    size=st.one_of(st.integers(min_value=0, max_value=2**20), st.integers(min_value=8**11 - 2, max_value=8**11 + 2)),
)
def test_member_headers_are_tarfiles_own_bytes(name, size):
    """The header build_tar writes itself is byte for byte what tarfile writes; anything needing pax goes to tarfile."""
    ref = packaging._member_info(name, size).tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    fast = packaging.member_header(name, size)
    if name.isascii() and len(name) <= 100 and size < 8**11:
        assert fast == ref
    else:
        assert fast is None and len(ref) > tarfile.BLOCKSIZE  # tarfile adds a pax record for it
