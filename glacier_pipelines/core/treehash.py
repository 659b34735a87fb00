"""The S3 Glacier (vault API) SHA-256 tree hash, whole, streaming and by aligned ranges.

Sources (AWS, *Amazon S3 Glacier Developer Guide*):

* "Computing Checksums" (checksum-calculations.html): hash every 1 MiB chunk of the payload
  with SHA-256 (the last chunk may be shorter); build the next level by hashing the
  concatenation of two consecutive child hashes; when one child is left over, promote its
  hash unchanged to the next level; repeat until one root remains.
* "Receiving Checksums When Downloading Data" (checksum-calculations-range.html): a range
  ``[StartBytes, EndBytes]`` is *tree-hash aligned* "if and only if the root of the tree hash
  built over the range is equivalent to a node in the tree hash of the whole archive"; only
  then does Glacier return a checksum for it. A tree-hash aligned range is also megabyte
  aligned, but not the other way round.

Because of the promote-the-odd-one rule, the node at level ``k`` (leaves are level 0) with
index ``j`` covers exactly the leaves ``[j * 2**k, min((j + 1) * 2**k, n))`` of an ``n``-leaf
tree. So the aligned ranges are the ``2**k`` MiB ranges that start at a multiple of their own
size, plus, at the end of the archive, the shorter tail ``[j * 2**k MiB, size)``.
:func:`is_tree_aligned` implements exactly that, and :func:`combine_ranges` relies on it:
the roots of consecutive ``2**k`` MiB ranges are the level-``k`` nodes of the whole tree.
"""

from __future__ import annotations

import hashlib

from glacier_pipelines.core.constants import MiB

_EMPTY = hashlib.sha256(b"").digest()


def _sha256(data: bytes | bytearray | memoryview) -> bytes:
    return hashlib.sha256(data).digest()


def chunk_hashes(data: bytes | bytearray | memoryview) -> list[bytes]:
    """SHA-256 of each 1 MiB chunk of ``data`` (the leaves); empty input gives ``[sha256(b"")]``."""
    view = memoryview(data).cast("B")
    if not len(view):
        return [_EMPTY]
    return [_sha256(view[i : i + MiB]) for i in range(0, len(view), MiB)]


def combine(hashes: list[bytes]) -> bytes:
    """The root over leaf (or same-level subtree) hashes: pairwise, an odd one out carried up."""
    if not hashes:
        raise ValueError("combine() needs at least one hash")
    level = list(hashes)
    for h in level:
        if len(h) != 32:
            raise ValueError(f"not a SHA-256 digest: {len(h)} bytes (expected 32)")
    while len(level) > 1:
        nxt = [_sha256(level[i] + level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def tree_hash(data: bytes | bytearray | memoryview) -> str:
    """Hex tree hash of the whole of ``data`` (what Glacier calls ``x-amz-sha256-tree-hash``)."""
    return combine(chunk_hashes(data)).hex()


class TreeHasher:
    """Streaming tree hash: :meth:`update` with pieces of any size, read the root at any time.

    The root is kept as a stack of perfect subtrees (one per set bit of the leaf count, like
    a binary counter), so memory is ``O(log n)`` whatever the archive size. With
    ``keep_leaves=True`` (the default) the 32-byte leaf hashes are kept as well for
    :meth:`leaf_hashes`; pass ``keep_leaves=False`` for very large archives (40 TB of data is
    40 million leaves).
    """

    def __init__(self, keep_leaves: bool = True) -> None:
        self._buffer = bytearray()
        self._stack: list[tuple[int, bytes]] = []  # (level, root of a perfect 2**level subtree)
        self._leaves: list[bytes] | None = [] if keep_leaves else None
        self.bytes_seen = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        self.bytes_seen += len(view)
        pos = 0
        if self._buffer:
            take = min(MiB - len(self._buffer), len(view))
            self._buffer += view[:take]
            pos = take
            if len(self._buffer) == MiB:
                self._push_leaf(_sha256(self._buffer))
                self._buffer.clear()
        while len(view) - pos >= MiB:
            self._push_leaf(_sha256(view[pos : pos + MiB]))
            pos += MiB
        if pos < len(view):
            self._buffer += view[pos:]

    def _push_leaf(self, leaf: bytes) -> None:
        if self._leaves is not None:
            self._leaves.append(leaf)
        level, node = 0, leaf
        while self._stack and self._stack[-1][0] == level:
            _, left = self._stack.pop()
            node = _sha256(left + node)
            level += 1
        self._stack.append((level, node))

    def digest(self) -> bytes:
        """The root so far (non-destructive: more :meth:`update` calls may follow)."""
        nodes = [node for _, node in self._stack]
        if self._buffer or not nodes:
            nodes.append(_sha256(self._buffer))
        # The Glacier tree over n leaves is H(perfect left part, tree of the rest): a right fold
        # over the perfect subtrees, largest first.
        root = nodes[-1]
        for left in reversed(nodes[:-1]):
            root = _sha256(left + root)
        return root

    def hexdigest(self) -> str:
        return self.digest().hex()

    def leaf_hashes(self) -> list[bytes]:
        """The 1 MiB chunk hashes so far, including the pending partial chunk (``[sha256(b"")]`` if empty)."""
        if self._leaves is None:
            raise RuntimeError("TreeHasher(keep_leaves=False) does not keep leaf hashes")
        leaves = list(self._leaves)
        if self._buffer or not leaves:
            leaves.append(_sha256(self._buffer))
        return leaves


def _next_pow2(n: int) -> int:
    return 1 << (n - 1).bit_length() if n > 1 else 1


def is_tree_aligned(start: int, end_inclusive: int, archive_size: int) -> bool:
    """Whether ``[start, end_inclusive]`` is tree-hash aligned in an archive of ``archive_size`` bytes.

    True iff the range is a node of the archive's tree: it starts at a multiple of
    ``2**k`` MiB and either is exactly ``2**k`` MiB long or runs to the archive's last byte
    while being at most ``2**k`` MiB long. Ranges outside the archive are never aligned.
    """
    if archive_size <= 0 or start < 0 or end_inclusive < start or end_inclusive >= archive_size:
        return False
    if start % MiB:
        return False
    length = end_inclusive - start + 1
    if end_inclusive + 1 == archive_size:
        span = _next_pow2(-(-length // MiB)) * MiB  # smallest 2**k MiB that holds the tail
    else:
        if length % MiB:
            return False
        leaves = length // MiB
        if leaves & (leaves - 1):
            return False
        span = length
    return start % span == 0


def aligned_chunk_size(archive_size: int, requested: int) -> int:
    """The largest ``2**k`` MiB that is <= ``requested`` (at least 1 MiB).

    Ranges ``[i * size, min((i + 1) * size, archive_size) - 1]`` are then all tree-hash
    aligned. The result is also capped at the smallest ``2**k`` MiB covering the whole
    archive (one range holds everything; a bigger size would change nothing).
    """
    if archive_size < 0:
        raise ValueError(f"archive size must be >= 0, got {archive_size}")
    size = MiB
    while size * 2 <= requested:
        size *= 2
    whole = _next_pow2(max(1, -(-archive_size // MiB))) * MiB
    return min(size, whole)


def aligned_ranges(archive_size: int, chunk_size: int) -> list[tuple[int, int]]:
    """``(start, end_inclusive)`` of the consecutive ranges of ``chunk_size`` (a ``2**k`` MiB) covering the archive."""
    _check_range_size(chunk_size)
    return [(s, min(s + chunk_size, archive_size) - 1) for s in range(0, archive_size, chunk_size)]


def _check_range_size(range_size: int) -> None:
    if range_size < MiB or range_size % MiB or (range_size // MiB) & (range_size // MiB - 1):
        raise ValueError(f"range size must be a power-of-two multiple of 1 MiB, got {range_size}")


def combine_ranges(range_roots: list[bytes], range_size: int) -> bytes:
    """The whole-archive root from the roots of consecutive aligned ranges of ``range_size``.

    ``range_size`` must be ``2**k`` MiB; every range but the last must be full. Each range root
    is then a level-``k`` node of the whole tree (the short last one too, thanks to the
    carry-up rule), and the levels above ``k`` are built exactly as :func:`combine` does.
    """
    _check_range_size(range_size)
    if not range_roots:
        raise ValueError("combine_ranges() needs at least one range root")
    return combine(range_roots)
