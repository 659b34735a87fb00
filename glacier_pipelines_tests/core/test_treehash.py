"""Tests for glacier_pipelines.core.treehash: the Glacier SHA-256 tree hash, streaming, aligned ranges."""

from __future__ import annotations

import hashlib
import io
import random

import pytest
from botocore.utils import calculate_tree_hash
from hypothesis import given, settings
from hypothesis import strategies as st

from glacier_pipelines.core.treehash import (
    MiB,
    TreeHasher,
    aligned_chunk_size,
    aligned_ranges,
    chunk_hashes,
    combine,
    combine_ranges,
    is_tree_aligned,
    tree_hash,
)

_RNG = random.Random(20240601)
_POOL = _RNG.randbytes(18 * MiB + 5)  # one random pool; tests slice it


def _sha(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


@pytest.mark.parametrize(
    "size",
    [0, 1, MiB - 1, MiB, MiB + 1, 3 * MiB + 5, 7 * MiB, 16 * MiB],
    ids=["0", "1", "1MiB-1", "1MiB", "1MiB+1", "3MiB+5", "7MiB", "16MiB"],
)
def test_tree_hash_matches_botocore(size):
    data = _POOL[:size]
    expected = calculate_tree_hash(io.BytesIO(data))
    assert tree_hash(data) == expected
    assert combine(chunk_hashes(data)).hex() == expected
    hasher = TreeHasher()
    hasher.update(data)
    assert hasher.hexdigest() == expected
    assert hasher.digest() == bytes.fromhex(expected)
    assert hasher.bytes_seen == size
    assert hasher.leaf_hashes() == chunk_hashes(data)


def test_small_trees_by_hand():
    a, b, c = (_POOL[i * MiB : (i + 1) * MiB] for i in range(3))
    assert chunk_hashes(b"") == [_sha(b"")]
    assert tree_hash(b"") == hashlib.sha256(b"").hexdigest()
    assert tree_hash(b"x") == hashlib.sha256(b"x").hexdigest()  # one chunk: plain SHA-256
    assert tree_hash(a + b) == _sha(_sha(a) + _sha(b)).hex()
    # three leaves: the third is carried up unchanged, then paired with the first pair's parent
    assert tree_hash(a + b + c) == _sha(_sha(_sha(a) + _sha(b)) + _sha(c)).hex()


def test_combine_rejects_empty_and_non_digests():
    with pytest.raises(ValueError):
        combine([])
    with pytest.raises(ValueError):
        combine([b"short"])
    leaf = _sha(b"abc")
    assert combine([leaf]) == leaf


def test_tree_hasher_empty_and_types():
    hasher = TreeHasher()
    assert hasher.hexdigest() == hashlib.sha256(b"").hexdigest()
    assert hasher.leaf_hashes() == [_sha(b"")]
    data = _POOL[: 2 * MiB + 3]
    hasher.update(bytearray(data[:10]))
    hasher.update(memoryview(data)[10:])
    assert hasher.hexdigest() == tree_hash(data)


def test_tree_hasher_without_leaves_keeps_the_digest():
    data = _POOL[: 5 * MiB + 1]
    hasher = TreeHasher(keep_leaves=False)
    hasher.update(data)
    assert hasher.hexdigest() == tree_hash(data)
    with pytest.raises(RuntimeError):
        hasher.leaf_hashes()


_STREAM = _POOL[: 3 * MiB + 17]
_EDGES = [MiB - 1, MiB, MiB + 1, 2 * MiB, 3 * MiB, len(_STREAM) - 1]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(st.integers(min_value=0, max_value=len(_STREAM)), st.sampled_from(_EDGES)),
        max_size=8,
    )
)
def test_streaming_any_split_points_equals_one_shot(cuts):
    bounds = [0, *sorted(cuts), len(_STREAM)]
    hasher = TreeHasher()
    for lo, hi in zip(bounds, bounds[1:]):
        hasher.update(_STREAM[lo:hi])
        # digest() is non-destructive and always the root of what was fed so far
        assert hasher.hexdigest() == tree_hash(_STREAM[:hi])
    assert hasher.bytes_seen == len(_STREAM)
    assert hasher.leaf_hashes() == chunk_hashes(_STREAM)


@pytest.mark.parametrize(
    ("size", "range_size"),
    [
        (18 * MiB + 5, 4 * MiB),  # 4 full ranges + a 2 MiB+5 tail
        (18 * MiB + 5, 8 * MiB),  # 2 full ranges + a 2 MiB+5 tail
        (17 * MiB, 4 * MiB),  # tail of exactly one leaf
        (16 * MiB, 8 * MiB),  # no short range
        (3 * MiB, 8 * MiB),  # one range shorter than range_size
        (5 * MiB + 1, MiB),  # 1 MiB ranges are the leaves
    ],
)
def test_combine_ranges_equals_whole_root(size, range_size):
    data = _POOL[:size]
    ranges = aligned_ranges(size, range_size)
    assert ranges[0][0] == 0 and ranges[-1][1] == size - 1
    roots = [bytes.fromhex(tree_hash(data[s : e + 1])) for s, e in ranges]
    assert combine_ranges(roots, range_size).hex() == tree_hash(data)
    assert all(is_tree_aligned(s, e, size) for s, e in ranges)


@pytest.mark.parametrize("bad", [0, MiB - 1, MiB + 1, 3 * MiB, 12 * MiB])
def test_combine_ranges_needs_power_of_two_mib(bad):
    with pytest.raises(ValueError):
        combine_ranges([_sha(b"x")], bad)
    with pytest.raises(ValueError):
        combine_ranges([], 4 * MiB)


# "Receiving Checksums When Downloading Data": the 6.5 MB archive of the docs' example, from
# which 2 MB ranges are retrieved; and the 3.1 MB archive of Get Job Output's description.
SIZE_6_5 = 6 * MiB + MiB // 2
SIZE_3_1 = 3 * MiB + MiB // 10


@pytest.mark.parametrize(
    ("start", "end", "size", "aligned"),
    [
        (0, 2 * MiB - 1, SIZE_6_5, True),  # 2 MB at a multiple of 2 MB
        (2 * MiB, 4 * MiB - 1, SIZE_6_5, True),
        (4 * MiB, 6 * MiB - 1, SIZE_6_5, True),
        (1 * MiB, 3 * MiB - 1, SIZE_6_5, False),  # megabyte aligned, not tree-hash aligned
        (3 * MiB, 5 * MiB - 1, SIZE_6_5, False),
        (0, SIZE_6_5 - 1, SIZE_6_5, True),  # the whole archive is the root
        (6 * MiB, SIZE_6_5 - 1, SIZE_6_5, True),  # the last partial leaf
        (4 * MiB, SIZE_6_5 - 1, SIZE_6_5, True),  # 2.5 MB tail: node over leaves 4..6 (6 carried up)
        (2 * MiB, SIZE_6_5 - 1, SIZE_6_5, False),  # ends at the archive end but is no node
        (1 * MiB, SIZE_6_5 - 1, SIZE_6_5, False),
        (0, 4 * MiB - 1, SIZE_6_5, True),
        (0, 3 * MiB - 1, SIZE_6_5, False),  # 3 MB is not a power of two
        (MiB // 2, MiB + MiB // 2 - 1, SIZE_6_5, False),  # not even megabyte aligned
        (1 * MiB, 2 * MiB - 1, SIZE_3_1, True),  # Get Job Output's 3.1 MB example, 1 MB to 2 MB
        (2 * MiB, SIZE_3_1 - 1, SIZE_3_1, True),  # ... and 2 MB to the end (3.1 MB)
        (0, MiB - 1, MiB - 1, False),  # beyond the archive
        (0, 0, 0, False),  # empty archive
        (5, 4, SIZE_6_5, False),  # inverted
    ],
)
def test_is_tree_aligned_examples(start, end, size, aligned):
    assert is_tree_aligned(start, end, size) is aligned


def _tree_nodes(data: bytes) -> set[bytes]:
    level = chunk_hashes(data)
    nodes = set(level)
    while len(level) > 1:
        nxt = [_sha(level[i] + level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        nodes.update(nxt)
        level = nxt
    return nodes


@pytest.mark.parametrize("size", [SIZE_6_5, 5 * MiB, 9 * MiB + 1])
def test_is_tree_aligned_is_the_documented_definition(size):
    """Aligned iff the tree hash over the range equals a node of the whole archive's tree."""
    data = _POOL[:size]
    nodes = _tree_nodes(data)
    starts = range(0, size, MiB)
    ends = [e - 1 for e in range(MiB, size, MiB)] + [size - 1]
    for s in starts:
        for e in ends:
            if e < s:
                continue
            expected = bytes.fromhex(tree_hash(data[s : e + 1])) in nodes
            assert is_tree_aligned(s, e, size) is expected, (s / MiB, (e + 1) / MiB)


@pytest.mark.parametrize(
    ("archive_size", "requested", "expected"),
    [
        (100 * 1024 * MiB, 5 * MiB, 4 * MiB),
        (100 * 1024 * MiB, 8 * MiB, 8 * MiB),
        (100 * 1024 * MiB, 0, MiB),
        (100 * 1024 * MiB, MiB - 1, MiB),
        (100 * 1024 * MiB, 4096 * MiB + 1, 4096 * MiB),
        (3 * MiB, 1024 * MiB, 4 * MiB),  # capped: one range holds the archive
        (10, 64 * MiB, MiB),
    ],
)
def test_aligned_chunk_size(archive_size, requested, expected):
    size = aligned_chunk_size(archive_size, requested)
    assert size == expected
    assert all(is_tree_aligned(s, e, archive_size) for s, e in aligned_ranges(archive_size, size)[:50])


def test_aligned_chunk_size_rejects_negative_archive():
    with pytest.raises(ValueError):
        aligned_chunk_size(-1, MiB)
