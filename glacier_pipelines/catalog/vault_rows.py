"""Typed rows of the vault-copy tables (catalog/vault_tables.py), as ``VaultStore`` returns them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without a zone; everything stored here is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


@dataclass
class ArchiveRow:
    pk: int
    vault: str
    archive_id: str
    description: str
    size: int
    creation_date: datetime
    tree_hash: str
    name: str
    naming_reason: str
    destination_key: str
    status: str
    messages: list[str]
    job_id: str | None
    job_started_at: datetime | None
    job_completed_at: datetime | None
    jobs_started: int
    job_failures: int
    upload_id: str | None
    chunk_size: int | None
    attempts: int
    bucket: str | None
    etag: str | None
    s3_checksum: str | None
    done_at: datetime | None
    run_id: str | None = None  # the run that gave the archive its status (the copy's run when DONE)


@dataclass
class JobRow:
    job_id: str
    vault: str
    kind: str
    archive_id: str | None
    tier: str | None
    format: str | None
    bytes: int
    status: str
    initiated_at: datetime
    completed_at: datetime | None
    checked_at: datetime | None
    message: str | None
    loaded_at: datetime | None
    result: dict[str, Any] | None


@dataclass
class PartRow:
    part_number: int
    upload_id: str
    etag: str
    checksum_sha256: str
    tree_hash: str
    size: int


_DATES = ("creation_date", "job_started_at", "job_completed_at", "done_at", "initiated_at", "completed_at", "checked_at", "loaded_at")


def archive_row(row: Any) -> ArchiveRow:
    m = dict(row._mapping)
    m["pk"] = m.pop("id")
    m["messages"] = list(m["messages"] or [])
    for name in _DATES:
        if name in m:
            m[name] = utc(m[name])
    return ArchiveRow(**{f: m[f] for f in ArchiveRow.__dataclass_fields__})


def job_row(row: Any) -> JobRow:
    m = dict(row._mapping)
    for name in _DATES:
        if name in m:
            m[name] = utc(m[name])
    return JobRow(**{f: m[f] for f in JobRow.__dataclass_fields__})
