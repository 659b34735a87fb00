"""What a restore notification or header says, once parsed: the event, the message's events and skipped records, the restore state."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from glacier_pipelines.core import validation

#: Upper bound on :attr:`RestoreEvent.run_key`.
MAX_RUN_KEY_LENGTH = 1000


class EventParseError(ValueError):
    """A message or header is malformed; ``str(exc)`` says what is wrong."""


@dataclass(frozen=True)
class RestoreEvent:
    kind: str  # "completed" | "initiated" | "expired"
    bucket: str
    key: str  # decoded object key
    version_id: str | None
    event_time: str  # as given by the producer (ISO 8601)
    expiry: datetime | None  # restored copy expiry, tz-aware UTC
    storage_class: str | None  # source storage class
    source: str  # "s3" | "eventbridge"

    @property
    def run_key(self) -> str:
        """Unique per event: ``bucket/key/version-or-null/event_time``, at most 1000 characters.

        When that is too long, the key part is replaced by ``sha256:<hex of the UTF-8 key>``; if it
        is still too long (absurd version id or time), the whole string is hashed.
        """
        version = self.version_id or "null"
        full = f"{self.bucket}/{self.key}/{version}/{self.event_time}"
        if len(full) <= MAX_RUN_KEY_LENGTH:
            return full
        digest = hashlib.sha256(self.key.encode("utf-8", "surrogatepass")).hexdigest()
        hashed = f"{self.bucket}/sha256:{digest}/{version}/{self.event_time}"
        if len(hashed) <= MAX_RUN_KEY_LENGTH:
            return hashed
        return "sha256:" + hashlib.sha256(full.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class ParsedMessage:
    events: list[RestoreEvent] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # human-readable reasons for skipped records


@dataclass(frozen=True)
class RestoreStatus:
    ongoing: bool
    expiry: datetime | None  # tz-aware UTC


# -- shared helpers ------------------------------------------------------------------------------


def describe(value: Any) -> str:
    """Short, safe description of a JSON value for error messages."""
    return validation.shown(value)


def type_name(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def parse_iso8601(value: str) -> datetime:
    """ISO 8601 (``Z`` suffix and fractional seconds allowed) -> tz-aware UTC. Naive means UTC."""
    if not isinstance(value, str) or not value.strip():
        raise EventParseError(f"timestamp must be a non-empty string, got {describe(value)}")
    try:
        parsed = datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError, TypeError):
        raise EventParseError(f"timestamp {describe(value)} is not ISO 8601") from None
