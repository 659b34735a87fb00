"""Restore requests: who wants which archived files back, for how long, at which retrieval tier.

Validation here is about the request itself; whether each file exists (for this tenant) and
whether its storage class allows the tier is decided against the catalog.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, field_validator, model_validator

from glacier_pipelines.core import keys
from glacier_pipelines.core.constants import TIERS, UNREADABLE_CLASSES

RESTORE_STATUSES = ("PENDING", "IN_PROGRESS", "READY", "EXPIRED", "FAILED", "REFUSED")
TERMINAL = ("EXPIRED", "FAILED", "REFUSED")
_EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")
DEFAULT_MAX_DAYS = 365
SIGV4_MAX_SECONDS = 7 * 24 * 3600  # a pre-signed URL cannot live longer than this


class FileSelector(BaseModel):
    """One file, named by exactly one of: its storage request id, its checksum, or its stored object URL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requestId: StrictStr | None = Field(default=None, min_length=1, max_length=255)
    checksum: StrictStr | None = Field(default=None, min_length=8, max_length=128)
    url: StrictStr | None = Field(default=None, min_length=6, max_length=2048)

    @model_validator(mode="after")
    def _exactly_one(self) -> "FileSelector":
        given = [n for n in ("requestId", "checksum", "url") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("name a file by exactly one of requestId, checksum or url")
        if self.checksum is not None:
            if not re.fullmatch(r"[0-9a-fA-F]+", self.checksum):
                raise ValueError("checksum must be hexadecimal")
            object.__setattr__(self, "checksum", self.checksum.lower())
        if self.url is not None and not self.url.startswith("s3://"):
            raise ValueError("url must be a stored object URL (s3://bucket/key)")
        return self

    def describe(self) -> str:
        if self.requestId is not None:
            return f"requestId {self.requestId}"
        if self.checksum is not None:
            return f"checksum {self.checksum}"
        return f"url {self.url}"


class RestoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: StrictStr
    files: list[FileSelector] = Field(min_length=1, max_length=10_000)
    days: StrictInt = Field(ge=1)
    tier: StrictStr = "Bulk"
    requester: StrictStr
    note: StrictStr | None = Field(default=None, max_length=2000)

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, value: str) -> str:
        return keys.tenant_field(value)

    @field_validator("tier")
    @classmethod
    def _tier(cls, value: str) -> str:
        for tier in TIERS:
            if value.lower() == tier.lower():
                return tier
        raise ValueError(f"tier must be one of {', '.join(TIERS)}")

    @field_validator("requester")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.match(value.strip()):
            raise ValueError("must be an email address")
        return value.strip()


class RestoreRequestError(ValueError):
    """A restore request that cannot be accepted; the message names each bad field."""


def parse_restore_request(data: Any, *, max_days: int = DEFAULT_MAX_DAYS) -> RestoreRequest:
    try:
        request = RestoreRequest.model_validate(data)
    except ValidationError as exc:
        raise RestoreRequestError(
            "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}" if e["loc"] else e["msg"]
                for e in exc.errors()
            )
        ) from None
    if request.days > max_days:
        raise RestoreRequestError(f"days: at most {max_days}, got {request.days}")
    return request


def tier_refusal(storage_class: str, tier: str) -> str | None:
    """Why a tier cannot be used for a class, or None when it can."""
    if storage_class == "DEEP_ARCHIVE" and tier == "Expedited":
        return "Expedited retrieval is not available for DEEP_ARCHIVE; use Standard (within 12 h) or Bulk (within 48 h)"
    return None


def needs_restore(storage_class: str) -> bool:
    return storage_class in UNREADABLE_CLASSES


def link_lifetime(now: datetime, restore_expiry: datetime | None, max_seconds: int = SIGV4_MAX_SECONDS) -> int:
    """Seconds a pre-signed link may live: never past the restored copy's expiry, never past SigV4's limit."""
    limit = min(max_seconds, SIGV4_MAX_SECONDS)
    if restore_expiry is not None:
        limit = min(limit, int((restore_expiry - now).total_seconds()))
    return max(0, limit)


def next_poll_delay(attempt: int, *, first: float = 60.0, cap: float = 6 * 3600.0) -> timedelta:
    """Polling backoff: 1 min, 2 min, 4 min ... up to 6 h, so a 48 h restore costs a few dozen HEADs."""
    return timedelta(seconds=min(cap, first * (2 ** max(0, attempt))))


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
