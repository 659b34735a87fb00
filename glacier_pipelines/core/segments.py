"""Names of the package members appended to local segments.

Kept apart from core/staging.py, which needs the object-store port (and with it botocore), so
that the fetch processes (core/local_fetch.py) can append to segments with nothing else loaded.
A member is named ``<segment path>#<offset>+<length>``; the segment's name ends in ``.seg``.
"""

from __future__ import annotations

import re

SUFFIX = ".seg"
_MEMBER = re.compile(r"^(?P<segment>.+\.seg)#(?P<offset>\d+)\+(?P<length>\d+)$")


def member_locator(segment: str, offset: int, length: int) -> str:
    return f"{segment}#{offset}+{length}"


def in_segment(locator: str) -> tuple[str, int, int] | None:
    """(segment path, offset, length) of a member appended to a local segment; None for a staged file of its own."""
    m = _MEMBER.match(str(locator))
    return (m["segment"], int(m["offset"]), int(m["length"])) if m else None
