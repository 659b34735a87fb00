"""The vault ledger: every archive of a vault copy, as the catalog knows it, written next to the copies in S3.

The copies carry their vault, archive id, tree hash and creation date in their metadata, but an
archive that failed, was skipped or waits has no copy, and a description can be 1,024 characters.
So each write of the ledger is one small JSON Lines object under
``<vault prefix>/~ledger/<vault>/`` (``~`` is not allowed in vault names, so no vault's copies
live there): one line per archive whose row changed since the last write, and one line for the
inventory the rows came from. ``catalog rebuild`` reads them, the last line of each archive
winning, and gives back the vault tables.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from glacier_pipelines.core import ledger

FOLDER = "~ledger"
SUFFIX = ".jsonl"
ARCHIVE, INVENTORY = "vault-archive", "vault-inventory"
ARCHIVE_FIELDS = (
    "entry",
    "vault",
    "archiveId",
    "description",
    "size",
    "creationDate",
    "treeHash",
    "name",
    "namingReason",
    "destinationKey",
    "status",
    "messages",
    "bucket",
    "etag",
    "s3Checksum",
    "doneAt",
    "runId",
    "recordedAt",
)
INVENTORY_FIELDS = ("entry", "vault", "jobId", "format", "initiatedAt", "completedAt", "loadedAt", "result", "runId")
REQUIRED = {
    ARCHIVE: ("vault", "archiveId", "size", "creationDate", "treeHash", "destinationKey", "status"),
    INVENTORY: ("vault", "jobId", "loadedAt"),
}
LINES_PER_OBJECT = 10_000


def folder(prefix: str) -> str:
    """Where every vault's ledger lives under the vault prefix (with a trailing slash)."""
    return "/".join(p for p in (prefix.strip("/"), FOLDER) if p) + "/"


def key_for(prefix: str, vault: str, now: datetime | None = None) -> str:
    """A new ledger object's key: time first, so a listing reads oldest first; a random tail, so writers never collide."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{folder(prefix)}{vault}/{stamp}-{uuid.uuid4().hex[:12]}{SUFFIX}"


def is_ledger_key(prefix: str, key: str) -> bool:
    return key.startswith(folder(prefix)) and key.endswith(SUFFIX)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def encode(entries: Iterable[dict[str, Any]]) -> bytes:
    out = []
    for e in entries:
        fields = ARCHIVE_FIELDS if e["entry"] == ARCHIVE else INVENTORY_FIELDS
        out.append(json.dumps({f: e.get(f) for f in fields}, sort_keys=True, default=str) + "\n")
    return "".join(out).encode("utf-8")


def _complete(entry: dict[str, Any]) -> None:
    if entry.get("entry") not in REQUIRED:
        raise ValueError("not a vault ledger entry")
    missing = [f for f in REQUIRED[entry["entry"]] if entry.get(f) in (None, "")]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")


def parse(data: bytes) -> list[dict[str, Any]]:
    """The entries of one ledger object; a line that is not a complete entry is refused with its number."""
    return ledger.parse_lines(data, "vault ledger", _complete)


def latest(entries: Iterable[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], dict[str, Any]]]:
    """(vault -> its last inventory line, (vault, archive id) -> its last line), from entries in the order written."""
    inventories: dict[str, dict[str, Any]] = {}
    archives: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in entries:
        if entry["entry"] == INVENTORY:
            inventories[entry["vault"]] = entry
        else:
            archives[(entry["vault"], entry["archiveId"])] = entry
    return inventories, archives
