"""The ``x-amz-restore`` header (HeadObject ``Restore``) that restore polling reads."""

from __future__ import annotations

import email.utils
import re
from datetime import datetime, timezone

from glacier_pipelines.core.events.model import EventParseError, RestoreStatus
from glacier_pipelines.core.events.model import describe as _describe

_HEADER_PAIR = re.compile(r'\s*([A-Za-z][A-Za-z0-9-]*)\s*=\s*"([^"]*)"\s*')
_HEADER_SEPARATOR = re.compile(r"\s*,\s*")


def parse_restore_header(value: str | None) -> RestoreStatus | None:
    """Parse ``x-amz-restore`` / HeadObject ``Restore``.

    ``'ongoing-request="true"'`` -> ongoing, no expiry; ``'ongoing-request="false", expiry-date="Fri,
    21 Dec 2012 00:00:00 GMT"'`` -> done, expiry tz-aware UTC. ``None`` or blank -> ``None`` (no
    restore was requested). Unknown ``name="value"`` pairs are ignored; anything malformed raises
    :class:`EventParseError`.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventParseError(f"x-amz-restore header must be a string, got {type(value).__name__}")
    if not value.strip():
        return None
    pairs: dict[str, str] = {}
    pos = 0
    while True:
        match = _HEADER_PAIR.match(value, pos)
        if match is None:
            raise EventParseError(f"x-amz-restore header {_describe(value)} is malformed at position {pos}")
        name = match.group(1).lower()
        if name in pairs:
            raise EventParseError(f"x-amz-restore header {_describe(value)} repeats {name}")
        pairs[name] = match.group(2)
        pos = match.end()
        if pos == len(value):
            break
        sep = _HEADER_SEPARATOR.match(value, pos)
        if sep is None or sep.end() == len(value):
            raise EventParseError(f"x-amz-restore header {_describe(value)} is malformed at position {pos}")
        pos = sep.end()

    ongoing_text = pairs.get("ongoing-request")
    if ongoing_text is None:
        raise EventParseError(f"x-amz-restore header {_describe(value)} has no ongoing-request")
    if ongoing_text.lower() not in ("true", "false"):
        raise EventParseError(f'x-amz-restore ongoing-request must be "true" or "false", got {ongoing_text!r}')
    ongoing = ongoing_text.lower() == "true"

    expiry: datetime | None = None
    expiry_text = pairs.get("expiry-date")
    if expiry_text is not None:
        try:
            expiry = email.utils.parsedate_to_datetime(expiry_text)
            if expiry is None:  # older Pythons returned None for garbage
                raise ValueError(expiry_text)
            if expiry.tzinfo is None:  # "-0000" means UTC with no zone information
                expiry = expiry.replace(tzinfo=timezone.utc)
            expiry = expiry.astimezone(timezone.utc)
        except (TypeError, ValueError, IndexError, OverflowError):
            raise EventParseError(f"x-amz-restore expiry-date {expiry_text!r} is not an RFC 1123 date") from None
    return RestoreStatus(ongoing=ongoing, expiry=expiry)
