"""The moves' record outside the catalog, and the move listing.

Finished moves are written to the tenant's ledger in S3 (core/ledger.py: one small JSON Lines
object per write, next to the request ledger), so ``catalog rebuild`` gives back the same
move listing after the catalog is lost. The catalog notes which ledger object holds each row as
it is now; a row that changed since is written again by the next write.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from glacier_pipelines.core import keys, ledger, lifecycle
from glacier_pipelines.core.objectstore import StoreError, put_document

if TYPE_CHECKING:
    from glacier_pipelines.flows.move_setup import MoveSetup

log = logging.getLogger(__name__)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()


def entry(row: dict[str, Any]) -> dict[str, Any]:
    """One move's ledger line, from its catalog row (with ``object_checksums``, the digests its object has)."""
    return {
        "tenant": row["tenant"],
        "kind": row["kind"],
        "bucket": row["bucket"],
        "sourceKey": row["source_key"],
        "destBucket": row["dest_bucket"],
        "destKey": row["dest_key"],
        "requestId": row["request_id"] or "",
        "storageClass": row["storage_class"],
        "status": row["status"],
        "verification": row["verification"],
        "sourceEtag": row["source_etag"],
        "sourceClass": row["source_class"],
        "size": row["size"],
        "sha256": row["sha256"],
        "s3Checksum": row["s3_checksum"],
        "checksumAlgorithm": row["checksum_algorithm"],
        "verifiedAgainst": row["verified_against"],
        "checksums": row["checksums"],
        "objectChecksums": row.get("object_checksums") or {},
        "parts": row["parts"],
        "messages": list(row["messages"] or []),
        "runId": row["run_id"],
        "copiedBy": row["copied_by"],
        "recordedAt": _iso(row["updated_at"]),
    }


def write_ledger(setup: MoveSetup, tenant: str) -> str | None:
    """Put the tenant's finished moves not yet in the ledger into one new ledger object; its key, None when nothing was due."""
    store = setup.store
    rows = store.unledgered(tenant)
    if not rows:
        return None
    body = ledger.encode_moves(entry(r) for r in rows)
    key = ledger.key_for(keys.tenant_prefix(setup.key_prefix, tenant), kind="moves")
    put_document(setup.object_store(setup.bucket), key, body)
    store.mark_ledgered(rows, key)
    return key


def listing(setup: MoveSetup, tenant: str, url: str | None = None) -> list[dict[str, Any]]:
    """``move --list``: every move and soft delete the catalog records for the tenant (under ``url`` when given), by source."""
    keys.validate_tenant(tenant)
    bucket, prefix = lifecycle.parse_s3_url(url) if url else (None, "")
    out = []
    for row in setup.store.rows(tenant):
        if bucket is not None and not (row["bucket"] == bucket and row["source_key"].startswith(prefix)):
            continue
        out.append(
            {
                "kind": row["kind"],
                "source": f"s3://{row['bucket']}/{row['source_key']}",
                "destination": f"s3://{row['dest_bucket']}/{row['dest_key']}",
                "requestId": row["request_id"] or None,
                "status": row["status"],
                "storageClass": row["storage_class"],
                "sourceClass": row["source_class"],
                "verification": row["verification"],
                "sizeInBytes": row["size"],
                "sha256": row["sha256"],
                "s3Checksum": row["s3_checksum"],
                "checksumAlgorithm": row["checksum_algorithm"],
                "verifiedAgainst": row["verified_against"] or [],
                "parts": row["parts"],
                "doneByRun": row["run_id"] if row["status"] in ("DONE", "SKIPPED") else None,
                "copiedByRun": row["copied_by"],
                "messages": list(row["messages"] or []),
            }
        )
    return sorted(out, key=lambda r: (r["source"], r["destination"], r["kind"], r["requestId"] or ""))


def record(setup: MoveSetup, tenant: str) -> None:
    """:func:`write_ledger`, a failure logged: the rows stay due, and the next move or trash writes them."""
    try:
        write_ledger(setup, tenant)
    except StoreError as exc:
        log.warning("move ledger of tenant %s not written (the next move writes it): %s", tenant, exc)
