"""Tests for glacier_pipelines.core.checksums: multi-digest streaming, algorithm names, S3 encodings."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glacier_pipelines.core import checksums
from glacier_pipelines.core.checksums import MultiDigest, b64, hex_length, normalize_algorithm, s3_composite_sha256

HASHLIB_NAMES = {
    "MD5": "md5",
    "SHA-1": "sha1",
    "SHA-224": "sha224",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
}


@st.composite
def data_and_splits(draw):
    data = draw(st.binary(max_size=4096))
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    chunks = [data[a:b] for a, b in zip(bounds, bounds[1:])]
    return data, chunks


@settings(max_examples=150, deadline=None)
@given(data_and_splits(), st.sampled_from([bytes, bytearray, memoryview]))
def test_multidigest_matches_hashlib_over_any_chunking(sample, wrap):
    data, chunks = sample
    assert b"".join(chunks) == data
    md = MultiDigest(HASHLIB_NAMES)
    for chunk in chunks:
        md.update(wrap(chunk))
    assert md.bytes_seen == len(data)
    for name, hname in HASHLIB_NAMES.items():
        expected = hashlib.new(hname, data)
        assert md.digest(name) == expected.digest()
        assert md.hexdigest(name) == expected.hexdigest()


def test_multidigest_accepts_aliases_when_reading_back():
    md = MultiDigest(["sha256", "md5"])
    md.update(b"abc")
    assert md.hexdigest("SHA-256") == hashlib.sha256(b"abc").hexdigest()
    assert md.hexdigest("sha-256") == hashlib.sha256(b"abc").hexdigest()
    assert md.digest("MD5") == hashlib.md5(b"abc").digest()


def test_multidigest_published_vectors():
    # FIPS 180-2 / RFC 1321 test vectors for "abc".
    md = MultiDigest(["MD5", "SHA-1", "SHA-256"])
    md.update(b"a")
    md.update(b"bc")
    assert md.hexdigest("MD5") == "900150983cd24fb0d6963f7d28e17f72"
    assert md.hexdigest("SHA-1") == "a9993e364706816aba3e25717850c26c9cd0d89d"
    assert md.hexdigest("SHA-256") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_multidigest_duplicate_algorithms_collapse():
    md = MultiDigest(["SHA-256", "sha256", "SHA256", "sha-256", "md5", "MD5"])
    assert len(md._hashes) == 2
    md.update(b"hello")
    md.update(b" world")
    # Were duplicates fed separately, each would still be right, but were one hash object fed twice
    # per chunk the digest would be of doubled data; check against hashlib.
    assert md.hexdigest("SHA-256") == hashlib.sha256(b"hello world").hexdigest()
    assert md.hexdigest("MD5") == hashlib.md5(b"hello world").hexdigest()
    assert md.bytes_seen == 11


def test_multidigest_bytes_seen_counts_all_chunks():
    md = MultiDigest(["MD5"])
    assert md.bytes_seen == 0
    md.update(b"")
    assert md.bytes_seen == 0
    md.update(b"x" * 1000)
    md.update(bytearray(24))
    md.update(memoryview(b"12345"))
    assert md.bytes_seen == 1029


def test_multidigest_unrequested_algorithm_is_not_available():
    md = MultiDigest(["MD5"])
    with pytest.raises(KeyError):
        md.digest("SHA-256")


def test_multidigest_unknown_algorithm_refused():
    with pytest.raises(ValueError, match="unsupported checksum algorithm"):
        MultiDigest(["MD5", "CRC32"])


@pytest.mark.parametrize(
    "alias, canonical",
    [
        ("md5", "MD5"),
        ("MD5", "MD5"),
        (" md5 ", "MD5"),
        ("sha1", "SHA-1"),
        ("sha-1", "SHA-1"),
        ("SHA_1", "SHA-1"),
        ("sha224", "SHA-224"),
        ("sha256", "SHA-256"),
        ("SHA-256", "SHA-256"),
        ("Sha_256", "SHA-256"),
        ("sha-384", "SHA-384"),
        ("SHA512", "SHA-512"),
        ("sha-512", "SHA-512"),
    ],
)
def test_normalize_algorithm_aliases(alias, canonical):
    assert normalize_algorithm(alias) == canonical


@pytest.mark.parametrize("bad", ["", "crc32", "SHA-3", "sha3-256", "blake2b", "md4", "SHA-257", "md 5"])
def test_normalize_algorithm_error_lists_supported_names(bad):
    with pytest.raises(ValueError) as info:
        normalize_algorithm(bad)
    message = str(info.value)
    assert repr(bad) in message
    for name in checksums.ALGORITHMS:
        assert name in message


@pytest.mark.parametrize("name", list(HASHLIB_NAMES))
def test_hex_length(name):
    assert hex_length(name) == len(hashlib.new(HASHLIB_NAMES[name]).hexdigest())
    assert hex_length(name.lower()) == hex_length(name)


def test_hex_length_known_values():
    assert (hex_length("md5"), hex_length("sha1"), hex_length("sha256"), hex_length("sha512")) == (32, 40, 64, 128)
    with pytest.raises(ValueError):
        hex_length("whirlpool")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=64), min_size=1, max_size=20))
def test_s3_composite_sha256_matches_independent_computation(parts):
    part_digests = [hashlib.sha256(p).digest() for p in parts]
    concatenated = b"".join(part_digests)
    expected = base64.b64encode(hashlib.sha256(concatenated).digest()).decode("ascii") + f"-{len(parts)}"
    assert s3_composite_sha256(part_digests) == expected
    # A generator works too (read once).
    assert s3_composite_sha256(d for d in part_digests) == expected


def test_s3_composite_sha256_order_matters():
    a, b = hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()
    assert s3_composite_sha256([a, b]) != s3_composite_sha256([b, a])
    assert s3_composite_sha256([a, b]).endswith("-2")


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=128))
def test_b64_round_trips(raw):
    encoded = b64(raw)
    assert isinstance(encoded, str)
    assert base64.b64decode(encoded, validate=True) == raw


def test_b64_known_value():
    # RFC 4648 section 10 test vector.
    assert b64(b"foobar") == "Zm9vYmFy"
    assert b64(b"") == ""


def test_sha256_hex():
    assert checksums.sha256_hex(b"abc") == hashlib.sha256(b"abc").hexdigest()


@given(st.lists(st.binary(max_size=256), min_size=1, max_size=8))
def test_s3_composite_crc32_matches_independent_computation(parts):
    import zlib

    crcs = [zlib.crc32(p).to_bytes(4, "big") for p in parts]
    expected = base64.b64encode(zlib.crc32(b"".join(crcs)).to_bytes(4, "big")).decode() + f"-{len(parts)}"
    assert [checksums.crc32(p) for p in parts] == crcs
    assert checksums.s3_composite_crc32(checksums.crc32(p) for p in parts) == expected


def test_s3_checksum_algorithm_tells_sha256_from_crc32():
    sha = b64(hashlib.sha256(b"x").digest())
    crc = b64(checksums.crc32(b"x"))
    assert checksums.s3_checksum_algorithm(sha) == "SHA256"
    assert checksums.s3_checksum_algorithm(f"{sha}-12") == "SHA256"  # composites stored before parts moved to CRC32
    assert checksums.s3_checksum_algorithm(crc) == "CRC32"
    assert checksums.s3_checksum_algorithm(f"{crc}-3") == "CRC32"
    for bad in ("", "abc", b64(hashlib.md5(b"x").digest())):
        with pytest.raises(ValueError):
            checksums.s3_checksum_algorithm(bad)
