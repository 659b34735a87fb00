"""The request ledger: what the catalog knows of each answered file, written next to the bytes in S3.

Package manifests name the members each package was built for, and object metadata carries
an object's digests, but neither names every request that refers to some bytes (deduplicated
requests, requests of files stored alone). So when the blocking checks answer requests
SUCCESS, one small JSON Lines object per answer batch goes under ``<tenant prefix>ledger/``
(STANDARD class, readable at once), one line per request. ``catalog rebuild`` reads them to
give back the same report after the catalog is lost.

Moves (server-side copies into an archive class, and the trash) write their rows here too, in
objects of their own (``...-moves-...jsonl``, lines with ``"entry": "move"``): kind, source and
destination, the source's ETag and checksums, how the copy was verified, and the run that made it,
so a rebuild gives back the move report.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

LEDGER_FOLDER = "ledger/"
SUFFIX = ".jsonl"
FIELDS = (
    "tenant",
    "requestId",
    "status",
    "algorithm",
    "checksum",
    "storedFileUrl",
    "size",
    "width",
    "height",
    "deduplicated",
    "storageClass",
    "answeredAt",
)
REQUIRED = ("tenant", "requestId", "status", "storedFileUrl")
MOVE = "move"
MOVE_FIELDS = (
    "entry",
    "tenant",
    "kind",
    "bucket",
    "sourceKey",
    "destBucket",
    "destKey",
    "requestId",
    "storageClass",
    "status",
    "verification",
    "sourceEtag",
    "sourceClass",
    "size",
    "sha256",
    "s3Checksum",
    "checksumAlgorithm",
    "verifiedAgainst",
    "checksums",
    "objectChecksums",
    "parts",
    "messages",
    "runId",
    "copiedBy",
    "recordedAt",
)
MOVE_REQUIRED = ("tenant", "kind", "bucket", "sourceKey", "destBucket", "destKey", "status")


def key_for(tenant_prefix: str, now: datetime | None = None, kind: str = "") -> str:
    """A new ledger object's key: time first, so a listing reads oldest first; a random tail, so writers never collide."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{tenant_prefix}{LEDGER_FOLDER}{stamp}-{kind + '-' if kind else ''}{uuid.uuid4().hex[:12]}{SUFFIX}"


def is_ledger_key(key: str) -> bool:
    return f"/{LEDGER_FOLDER}" in key and key.endswith(SUFFIX)


def encode(entries: Iterable[dict[str, Any]]) -> bytes:
    return "".join(json.dumps({f: e.get(f) for f in FIELDS}, sort_keys=True) + "\n" for e in entries).encode("utf-8")


def encode_moves(entries: Iterable[dict[str, Any]]) -> bytes:
    return "".join(
        json.dumps({f: e.get(f) for f in MOVE_FIELDS} | {"entry": MOVE}, sort_keys=True, default=str) + "\n" for e in entries
    ).encode("utf-8")


def is_move(entry: dict[str, Any]) -> bool:
    return entry.get("entry") == MOVE


def parse_lines(data: bytes, what: str, check: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    """The JSON objects of a JSON Lines ledger object; ``check`` raises ValueError for an incomplete entry, which is
    refused with its line number (``what`` names the ledger in the message). Shared by the request and vault ledgers."""
    out = []
    for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict):
                raise ValueError("not an object")
            check(entry)
        except ValueError as exc:
            raise ValueError(f"{what} line {number}: {exc}") from None
        out.append(entry)
    return out


def _complete(entry: dict[str, Any]) -> None:
    missing = [f for f in (MOVE_REQUIRED if is_move(entry) else REQUIRED) if not entry.get(f)]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")


def parse(data: bytes) -> list[dict[str, Any]]:
    """The entries of one ledger object (requests and moves); a line that is not a complete entry is refused with its number."""
    return parse_lines(data, "ledger", _complete)


def latest(entries: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The last entry written for each (tenant, request id): a request answered again replaces its earlier line."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in entries:
        if not is_move(entry):
            found[(entry["tenant"], entry["requestId"])] = entry
    return found


def latest_moves(entries: Iterable[dict[str, Any]]) -> dict[tuple[str, ...], dict[str, Any]]:
    """The last line written for each move (kind, source, destination, request id): a move's row as it was last recorded."""
    found: dict[tuple[str, ...], dict[str, Any]] = {}
    for entry in entries:
        if is_move(entry):
            found[
                (entry["kind"], entry["bucket"], entry["sourceKey"], entry["destBucket"], entry["destKey"], entry.get("requestId") or "")
            ] = entry
    return found
