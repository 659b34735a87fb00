"""Object key layout and the sanitizing that keeps every key inside its tenant's prefix.

Layout: ``<key prefix>/<tenant>/<destinationDirectory>/<checksum>``. The checksum as the
last segment makes keys content-addressed within a tenant, so the same bytes are stored
once and a name never overwrites different content.
"""

from __future__ import annotations

import re
import unicodedata

TENANT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_TENANT_RE = re.compile(TENANT_PATTERN)
MAX_DIRECTORY_LENGTH = 512
MAX_SEGMENT_LENGTH = 255
MAX_KEY_LENGTH = 1024  # S3's limit, in UTF-8 bytes
# Characters S3 documents as safe, plus Unicode letters and digits; anything else becomes "_".
_UNSAFE = re.compile(r"[^\w.\-+=@,()' ~!]", re.UNICODE)
# Plain ASCII segments of safe characters (no spaces, no leading "~"), joined by single slashes.
_PLAIN = re.compile(r"[A-Za-z0-9_.\-+=@,()'!][A-Za-z0-9_.\-+=@,()'!~]*(?:/[A-Za-z0-9_.\-+=@,()'!~]+)*")


class InvalidKey(ValueError):
    """A name that cannot become part of an object key; the message says why."""


def validate_tenant(tenant: str) -> str:
    """Tenants name partitions and key prefixes, so they are kept to a small, safe alphabet."""
    if not isinstance(tenant, str) or not _TENANT_RE.fullmatch(tenant):
        raise InvalidKey(f"tenant {tenant!r} is not valid: use 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit")
    return tenant


def tenant_field(value: str) -> str:
    """``validate_tenant`` for pydantic validators, which expect ValueError."""
    try:
        return validate_tenant(value)
    except InvalidKey as exc:
        raise ValueError(str(exc)) from None


def sanitize_directory(directory: str, max_length: int = MAX_DIRECTORY_LENGTH) -> str:
    """Turn a relative ``destinationDirectory`` into key segments, refusing anything that could escape.

    Refused: absolute paths, drive letters, backslashes, ``..`` segments, control characters,
    over-long names. Empty and ``.`` segments are dropped; other unsafe characters become ``_``.
    The local object store checks whole keys with it (``max_length=MAX_KEY_LENGTH``).
    """
    if not isinstance(directory, str):
        raise InvalidKey("must be a string")
    if len(directory) > max_length:
        raise InvalidKey(f"longer than {max_length} characters")
    if not directory:
        return ""  # no destinationDirectory, the usual case: what the loop below would return, without its checks
    if _PLAIN.fullmatch(directory) and all(len(s) <= MAX_SEGMENT_LENGTH and s.strip(".") for s in directory.split("/")):
        return directory  # already clean (staging writes thousands of these a second): what the loop below would return
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in directory):
        raise InvalidKey("contains control or invisible characters")
    if directory.startswith(("/", "~")) or re.match(r"^[A-Za-z]:([/\\]|$)", directory):
        raise InvalidKey("must be a relative path, not an absolute one")
    if "\\" in directory:
        raise InvalidKey("must use '/' as separator; backslashes are refused")
    segments = []
    for segment in directory.split("/"):
        segment = unicodedata.normalize("NFC", segment.strip())
        if segment in ("", "."):
            continue
        if segment == "..":
            raise InvalidKey("must not contain '..' segments")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_LENGTH:
            raise InvalidKey(f"segment {segment[:32]!r}... is longer than {MAX_SEGMENT_LENGTH} bytes")
        cleaned = _UNSAFE.sub("_", segment)
        if cleaned.strip(".") == "":
            cleaned = cleaned.replace(".", "_")
        segments.append(cleaned)
    return "/".join(segments)


def object_key(prefix: str, tenant: str, directory: str, checksum_hex: str) -> str:
    """The key of a file's object; ``directory`` must already be sanitized."""
    parts = [p for p in (prefix.strip("/"), validate_tenant(tenant), directory.strip("/"), checksum_hex.lower()) if p]
    key = "/".join(parts)
    if len(key.encode("utf-8")) > MAX_KEY_LENGTH:
        raise InvalidKey(f"object key would be longer than {MAX_KEY_LENGTH} bytes")
    return key


def tenant_prefix(prefix: str, tenant: str) -> str:
    """The prefix under which all of one tenant's objects live (with a trailing slash)."""
    return "/".join(p for p in (prefix.strip("/"), validate_tenant(tenant)) if p) + "/"
