"""Rebuilding the catalog from the bucket alone.

Package manifests name every package's members, object metadata carries an object's digests,
the request ledger (core/ledger.py) names every request answered SUCCESS with what it was told
and every move (kind, source and destination, checksums, the run that copied it), the vault
ledger (core/vault_ledger.py) every archive of a vault copy, and S3's restore state says which
objects are being (or were) restored.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.catalog.moves import FINISHED, MoveStore
from glacier_pipelines.catalog.rebuild import HeadFacts, LedgerAnswer, ManifestMember, RebuildStore, RestoreFacts
from glacier_pipelines.core import ledger, packaging
from glacier_pipelines.core.objectstore import BucketStores, ObjectHead, ObjectStore, StoreError, bucket_stores
from glacier_pipelines.core.tenants import TenantsConfig

log = logging.getLogger(__name__)


def scopes(bucket: str, prefix: str, tenants: TenantsConfig | None = None) -> list[tuple[str, str, str | None]]:
    """(bucket, prefix, tenant) to scan: the global bucket and prefix (tenant read from each key), then every configured
    tenant's own bucket and prefix that the global scan does not already cover (tenant known)."""
    out: list[tuple[str, str, str | None]] = [(bucket, prefix, None)]
    if tenants is None:
        return out
    for tenant in tenants.names:
        t_bucket, t_prefix, _ = tenants.placement(tenant)
        if not any(b == t_bucket and t_prefix.startswith(p) for b, p, _ in out):
            out.append((t_bucket, t_prefix, tenant))
    return out


def rebuild(
    catalog: Catalog,
    stores: BucketStores | Any,
    bucket: str,
    prefix: str,
    *,
    tenants: TenantsConfig | None = None,
    vault_prefix: str | None = None,
    vault_bucket: str | None = None,
) -> dict[str, int]:
    """Recreate objects, packages, members, requests, moves, vault copies and restore states from what ``bucket`` holds.

    Package members come back with their request ids from the manifests; standalone objects
    as objects (with the checksums in their metadata); then every move the ledger records (the
    objects moves made outside ``prefix`` come back too); then every request the ledger records,
    with its checksum, size, image dimensions and whether it was deduplicated, pointing at its
    object or package member (where a move took it since); then, with ``vault_prefix``, the vault
    tables from the vault ledger in ``vault_bucket`` (default ``bucket``). Rows that already
    exist are left as they are (run it twice: nothing changes the second time).

    With ``tenants`` (GLACIER_TENANTS_CONFIG), each configured tenant's own bucket and prefix is scanned too: its ledger,
    manifests and objects live there. Moves and ledger requests are resolved after every scope's objects are back.
    ``stores``: bucket -> its ObjectStore (``objectstore.bucket_stores``), or the boto3 client to build them on.
    """
    stores = bucket_stores(stores)
    counts = {"manifests": 0, "members": 0, "objects": 0, "ledger_requests": 0, "unresolved": 0, "restores": 0, "moves": 0}
    now = datetime.now(timezone.utc)
    written: list[tuple[str, dict[str, Any]]] = []
    for scope_bucket, scope_prefix, tenant in scopes(bucket, prefix, tenants):
        written += _rebuild_scope(catalog, stores(scope_bucket), scope_bucket, scope_prefix, tenant, now, counts)
    moved = _rebuild_moves(catalog, stores, written, now, counts)
    entries = ledger.latest(e for _, e in written)
    store = RebuildStore(catalog)
    for entry in entries.values():
        outcome = _ledger_request(store, entry, now, moved)
        counts["ledger_requests" if outcome else "unresolved"] += outcome is not None
        if outcome is False:
            log.warning(
                "rebuild: request %s of %s names %s, which the bucket does not hold",
                entry["requestId"],
                entry["tenant"],
                entry["storedFileUrl"],
            )
    if vault_prefix is not None:
        from glacier_pipelines.flows.vault.ledger import rebuild_vaults

        counts.update(rebuild_vaults(catalog, stores, vault_bucket or bucket, vault_prefix))
    return counts


def _rebuild_scope(
    catalog: Catalog, objects: ObjectStore, bucket: str, prefix: str, owner: str | None, now: datetime, counts: dict[str, int]
) -> list[tuple[str, dict[str, Any]]]:
    """Packages and objects under one bucket (``objects``) and prefix back in the catalog; returns its ledger lines (key, entry).
    ``owner``: the tenant the prefix belongs to, or None when the tenant is the first key segment after ``prefix``."""
    keys = [entry.key for entry in objects.list(prefix)]
    ledger_keys = sorted(k for k in keys if ledger.is_ledger_key(k))
    keys = [k for k in keys if not ledger.is_ledger_key(k)]
    manifest_keys = [k for k in keys if k.endswith(packaging.MANIFEST_SUFFIX)]
    package_keys = {k[: -len(packaging.MANIFEST_SUFFIX)] for k in manifest_keys}
    store = RebuildStore(catalog)
    for manifest_key in manifest_keys:
        with objects.get(manifest_key) as manifest:
            rows = packaging.parse_manifest(manifest.read())
        if not rows:
            continue
        head = objects.head(rows[0]["key"], checksum=True)
        members = [
            ManifestMember(
                tenant=r["tenant"],
                request_id=r["request_id"],
                algorithm=r["algorithm"],
                checksum=r["checksum"],
                name=r["name"],
                length=r["length"],
                sha256=r["sha256"],
                offset=r["offset"],
            )
            for r in rows
        ]
        restore = _restore(head, now)
        found, added = store.package(
            bucket, rows[0]["key"], _head(head), rows[0]["packageSha256"], restore, rows[0]["package"], manifest_key, members, now
        )
        counts["restores"] += found.restores
        counts["members"] += added
        counts["manifests"] += 1
    for key in keys:
        if key.endswith(packaging.MANIFEST_SUFFIX) or key in package_keys:
            continue
        try:
            head = objects.head(key, checksum=True)
        except StoreError as exc:
            if exc.status is None:  # S3 did not answer: stop rather than pass objects over
                raise
            log.warning("rebuild: cannot read s3://%s/%s: %s", bucket, key, exc)
            continue
        meta = head.metadata
        tenant = owner or key[len(prefix) :].lstrip("/").split("/", 1)[0]
        found = store.standalone(
            bucket,
            key,
            tenant,
            _head(head),
            meta.get("sha256", ""),
            _restore(head, now),
            ((meta.get("source-algorithm"), meta.get("source-checksum")), ("SHA-256", meta.get("sha256"))),
            now,
        )
        counts["restores"] += found.restores
        counts["objects"] += 1
    return [(k, e) for k in ledger_keys for e in ledger.parse(_read(objects, k))]


def _read(store: ObjectStore, key: str) -> bytes:
    with store.get(key) as body:
        return body.read()


def _rebuild_moves(
    catalog: Catalog, stores: BucketStores, written: list[tuple[str, dict[str, Any]]], now: datetime, counts: dict[str, int]
) -> dict[tuple[str, str], tuple[str, str]]:
    """Recreate each move's row from its last ledger line, and the object it made when the bucket pass did not (a move in
    a source bucket); returns where finished moves took objects: (bucket, source key) -> (bucket, destination key)."""
    store, rebuilt = MoveStore(catalog), RebuildStore(catalog)
    keys: dict[tuple[str, ...], str] = {}
    for key, entry in written:
        if ledger.is_move(entry):
            keys[
                (entry["kind"], entry["bucket"], entry["sourceKey"], entry["destBucket"], entry["destKey"], entry.get("requestId") or "")
            ] = key
    moved: dict[tuple[str, str], tuple[str, str]] = {}
    for identity, entry in ledger.latest_moves(e for _, e in written).items():
        dest = (entry["destBucket"], entry["destKey"])
        object_id = None
        if entry["status"] in FINISHED:
            if (entry["bucket"], entry["sourceKey"]) != dest:
                moved[(entry["bucket"], entry["sourceKey"])] = dest
            object_id = rebuilt.object_id(*dest)
            if object_id is None:
                head: ObjectHead | None
                try:
                    head = stores(dest[0]).head(dest[1], checksum=True)
                except StoreError as exc:
                    if exc.status is None:  # S3 did not answer: stop rather than pass the move's object over
                        raise
                    log.warning(
                        "rebuild: move of s3://%s/%s: s3://%s/%s cannot be read: %s", entry["bucket"], entry["sourceKey"], *dest, exc
                    )
                    head = None
                if head is not None:
                    found = rebuilt.moved_object(
                        dest[0], dest[1], entry["tenant"], _head(head), entry.get("sha256") or "", _restore(head, now), now
                    )
                    object_id = found.object_id
                    counts["restores"] += found.restores
            if object_id is not None and entry["kind"] == "MOVE":
                rebuilt.add_checksums(object_id, entry.get("objectChecksums") or {})
        counts["moves"] += store.insert_from_ledger(entry, object_id, keys[identity])
    return moved


def _ledger_request(
    store: RebuildStore, entry: dict[str, Any], now: datetime, moved: dict[tuple[str, str], tuple[str, str]] | None = None
) -> bool | None:
    """Recreate (or complete) one answered request from its ledger line: True when recorded, None when it already was,
    False when the object it names is not in the bucket (nor where a move took it)."""
    if entry.get("status") == "DELETED":  # deleted on request (flows/deletion.py): never recreated as answered
        store.mark_deleted(entry["tenant"], entry["requestId"], now)
        return None
    obj_bucket, obj_key, member = packaging.parse_member_url(entry["storedFileUrl"])
    locations = [(obj_bucket, obj_key)]
    for _ in range(10):  # the file was moved since it was answered (trash, --to-archive): follow it, a move at a time
        if moved is None or locations[-1] not in moved:
            break
        locations.append(moved[locations[-1]])
    answer = LedgerAnswer(
        tenant=entry["tenant"],
        request_id=entry["requestId"],
        algorithm=entry.get("algorithm"),
        checksum=(entry.get("checksum") or "").lower() or None,
        deduplicated=bool(entry.get("deduplicated")),
        size=entry.get("size"),
        width=entry.get("width"),
        height=entry.get("height"),
        member=member,
    )
    return store.ledger_request(answer, locations, now)


def _url(bucket: str, key: str) -> str:
    """An object's s3:// URL (for log lines)."""
    return f"s3://{bucket}/{key}"


def _head(head: ObjectHead) -> HeadFacts:
    s3_checksum = head.checksums.get("SHA256") or head.checksums.get("CRC32") or ""  # multipart objects: CRC32 composites
    return HeadFacts(storage_class=head.storage_class, size=head.size, s3_checksum=s3_checksum, etag=head.etag)


def _restore(head: ObjectHead, now: datetime) -> RestoreFacts | None:
    """An archived object's restore in progress (or its restored copy) as S3 reports it; None when there is none."""
    state = head.restore
    if state is None:
        return None
    expires = state.expiry
    # The days asked for are not in S3's answer: the days left are recorded.
    days = max(1, -(-int((expires - now).total_seconds()) // 86400)) if expires else 1
    return RestoreFacts(ongoing=state.ongoing, expires_at=expires, days=days)
