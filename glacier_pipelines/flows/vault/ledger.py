"""The vault ledger in S3 (core/vault_ledger.py): written after each step, read by ``catalog rebuild``.

A write puts every archive whose row the ledger does not hold as it is now (new archives, and
archives that settled: DONE, FAILED, SKIPPED, or back to NEW), plus the inventory they came
from, so the ledger always ends with each archive's latest row. A write that fails is logged and
done by the next step: the rows stay unledgered until then.
"""

from __future__ import annotations

import logging
from typing import Any

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.catalog import vault_tables as v
from glacier_pipelines.catalog.vault_history import VaultHistory
from glacier_pipelines.catalog.vaults import VaultStore
from glacier_pipelines.core import vault_ledger
from glacier_pipelines.core.objectstore import BucketStores, ObjectStore, StoreError, bucket_stores, put_document
from glacier_pipelines.core.vault_ledger import iso, parse_time
from glacier_pipelines.flows.store_faults import answered, said
from glacier_pipelines.flows.vault.setup import VaultSetup

log = logging.getLogger(__name__)
IN_FLIGHT = (v.REQUESTED, v.STAGED, v.TRANSFERRING)


def archive_entry(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "entry": vault_ledger.ARCHIVE,
        "vault": row["vault"],
        "archiveId": row["archive_id"],
        "description": row["description"],
        "size": row["size"],
        "creationDate": iso(row["creation_date"]),
        "treeHash": row["tree_hash"],
        "name": row["name"],
        "namingReason": row["naming_reason"],
        "destinationKey": row["destination_key"],
        "status": row["status"],
        "messages": list(row["messages"] or []),
        "bucket": row["bucket"],
        "etag": row["etag"],
        "s3Checksum": row["s3_checksum"],
        "doneAt": iso(row["done_at"]),
        "runId": row["run_id"],
        "recordedAt": iso(row["updated_at"]),
    }


def write_ledger(setup: VaultSetup, vault: str) -> int:
    """Put the vault's rows the ledger lacks into new ledger objects; how many archive lines were written (0: none due)."""
    history, store = VaultHistory(setup.catalog), setup.store
    written = 0
    while True:
        rows = history.unledgered(vault, vault_ledger.LINES_PER_OBJECT)
        inventory = store.latest_loaded_inventory(vault)
        entries: list[dict[str, Any]] = []
        if inventory is not None and (rows or not (inventory.result or {}).get("ledgerKey")):
            entries.append(
                {
                    "entry": vault_ledger.INVENTORY,
                    "vault": vault,
                    "jobId": inventory.job_id,
                    "format": inventory.format,
                    "initiatedAt": iso(inventory.initiated_at),
                    "completedAt": iso(inventory.completed_at),
                    "loadedAt": iso(inventory.loaded_at),
                    "result": {k: x for k, x in (inventory.result or {}).items() if k != "ledgerKey"},
                }
            )
        entries += [archive_entry(r) for r in rows]
        if not entries:
            return written
        body = vault_ledger.encode(entries)
        key = vault_ledger.key_for(setup.prefix, vault)
        put_document(setup.objects(), key, body)
        history.mark_ledgered(rows)
        if inventory is not None and not (inventory.result or {}).get("ledgerKey"):
            store.update_job(inventory.job_id, result={**(inventory.result or {}), "ledgerKey": key})
        written += len(rows)
        if len(rows) < vault_ledger.LINES_PER_OBJECT:
            return written


def record(setup: VaultSetup, vault: str) -> int:
    """:func:`write_ledger`, a failure logged (the rows stay due for the next step's write)."""
    try:
        return write_ledger(setup, vault)
    except StoreError as exc:
        log.warning("vault %s: ledger not written (the next step writes it): %s", vault, said(exc))
        return 0


# ---- rebuild ----------------------------------------------------------------------------------


def rebuild_vaults(catalog: Catalog, stores: BucketStores | Any, bucket: str, prefix: str) -> dict[str, int]:
    """Recreate the vault tables from the ledgers under ``<prefix>/~ledger/`` and the copies' metadata in ``bucket``.

    ``stores``: bucket -> its ObjectStore, or a boto3 S3 client to build them on (``core.objectstore.bucket_stores``).

    Archives come back with the status, messages, key and run of their last ledger line; one that
    was on its way (a retrieval job started) comes back NEW, since its job is not known any more.
    A copy S3 holds whose archive the ledger did not see DONE (the ledger write after it never
    happened) is recognised by its metadata (archive id, tree hash, size). Rows that exist are left.
    """
    counts = {"vaults": 0, "vault_archives": 0, "vault_copies_from_metadata": 0}
    history, store = VaultHistory(catalog), bucket_stores(stores)(bucket)
    keys = [entry.key for entry in store.list(vault_ledger.folder(prefix))]
    entries = [e for k in sorted(keys) if vault_ledger.is_ledger_key(prefix, k) for e in vault_ledger.parse(_read(store, k))]
    inventories, archives = vault_ledger.latest(entries)
    for vault, inv in inventories.items():
        loaded_at = parse_time(inv["loadedAt"])
        initiated_at = parse_time(inv.get("initiatedAt")) or loaded_at
        if initiated_at is None:  # the catalog requires it
            raise ValueError(f"vault ledger: the inventory {inv['jobId']!r} of vault {vault!r} has neither initiatedAt nor loadedAt")
        counts["vaults"] += history.add_inventory(
            vault=vault,
            job_id=inv["jobId"],
            fmt=inv.get("format"),
            initiated_at=initiated_at,
            completed_at=parse_time(inv.get("completedAt")),
            loaded_at=loaded_at,
            result=inv.get("result"),
            run_id=inv.get("runId"),
        )
    for (vault, archive_id), e in archives.items():
        status, messages = e["status"], list(e.get("messages") or [])
        if status in IN_FLIGHT:
            status, messages = (
                v.NEW,
                messages + ["rebuilt from the vault ledger: its retrieval job is not known any more, so a new one is started"],
            )
        counts["vault_archives"] += history.add_archive(
            {
                "vault": vault,
                "archive_id": archive_id,
                "description": e.get("description") or "",
                "size": int(e["size"]),
                "creation_date": parse_time(e["creationDate"]),
                "tree_hash": e["treeHash"],
                "name": e.get("name") or "",
                "naming_reason": e.get("namingReason") or "",
                "destination_key": e["destinationKey"],
                "status": status,
                "messages": messages,
                "bucket": e.get("bucket"),
                "etag": e.get("etag"),
                "s3_checksum": e.get("s3Checksum"),
                "done_at": parse_time(e.get("doneAt")),
                "run_id": e.get("runId"),
                "ledgered_status": e["status"],
            }
        )
    for vault in sorted({vault for vault, _ in archives}):
        counts["vault_copies_from_metadata"] += _copies_not_ledgered(history, store, bucket, prefix, vault)
    return counts


def _read(store: ObjectStore, key: str) -> bytes:
    with store.get(key) as body:
        return body.read()


def _copies_not_ledgered(history: VaultHistory, store: ObjectStore, bucket: str, prefix: str, vault: str) -> int:
    """Archives the ledger left short of DONE whose copy S3 holds (HEAD: its metadata names the archive and its tree hash)."""
    known = history.known_keys(vault)
    vault_prefix = "/".join(p for p in (prefix.strip("/"), vault) if p) + "/"
    found = 0
    for item in store.list(vault_prefix):
        archive_id, status = known.get(item.key, (None, None))
        if archive_id is None or status == v.DONE:
            continue
        try:
            head = store.head(item.key, checksum=True)
        except StoreError as exc:
            if not answered(exc):  # no answer at all (connection, timeout): the rebuild stops, as it always did
                raise
            log.warning("rebuild: cannot read s3://%s/%s: %s", bucket, item.key, said(exc))
            continue
        row = VaultStore(history.catalog).archive_by_id(vault, archive_id)
        if row is None:  # known_keys just listed it
            raise RuntimeError(f"vault {vault!r}: archive {archive_id!r} left the catalog during the rebuild")
        if (
            head.metadata.get("glacier-archive-id") != archive_id
            or head.metadata.get("glacier-tree-hash") != row.tree_hash
            or head.size != row.size
        ):
            continue
        history.mark_done_from_copy(
            vault,
            archive_id,
            bucket=bucket,
            etag=head.etag,
            s3_checksum=head.checksums.get("SHA256"),
            message=f"rebuilt: s3://{bucket}/{item.key} holds this archive (its metadata names it)",
        )
        found += 1
    return found
