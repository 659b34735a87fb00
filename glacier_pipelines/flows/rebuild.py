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

import sqlalchemy as sa
from botocore.exceptions import ClientError

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.moves import FINISHED, MoveStore
from glacier_pipelines.core import events, ledger, packaging, transfer

log = logging.getLogger(__name__)


def rebuild(catalog: Catalog, s3: Any, bucket: str, prefix: str, *, vault_prefix: str | None = None,
            vault_bucket: str | None = None) -> dict[str, int]:
    """Recreate objects, packages, members, requests, moves, vault copies and restore states from what ``bucket`` holds.

    Package members come back with their request ids from the manifests; standalone objects
    as objects (with the checksums in their metadata); then every move the ledger records (the
    objects moves made outside ``prefix`` come back too); then every request the ledger records,
    with its checksum, size, image dimensions and whether it was deduplicated, pointing at its
    object or package member (where a move took it since); then, with ``vault_prefix``, the vault
    tables from the vault ledger in ``vault_bucket`` (default ``bucket``). Rows that already
    exist are left as they are (run it twice: nothing changes the second time).
    """
    counts = {"manifests": 0, "members": 0, "objects": 0, "ledger_requests": 0, "unresolved": 0, "restores": 0, "moves": 0}
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix) for o in page.get("Contents", [])]
    ledger_keys = sorted(k for k in keys if ledger.is_ledger_key(k))
    keys = [k for k in keys if not ledger.is_ledger_key(k)]
    manifest_keys = [k for k in keys if k.endswith(packaging.MANIFEST_SUFFIX)]
    package_keys = {k[: -len(packaging.MANIFEST_SUFFIX)] for k in manifest_keys}
    now = datetime.now(timezone.utc)
    for manifest_key in manifest_keys:
        rows = packaging.parse_manifest(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
        if not rows:
            continue
        head = transfer.head_checksum(s3, bucket, rows[0]["key"])
        with catalog.engine.begin() as conn:
            object_id = _object(conn, bucket, rows[0]["key"], rows[0]["tenant"], head, rows[0]["packageSha256"], now)
            counts["restores"] += _restore_state(conn, object_id, head, now)
            package_id = rows[0]["package"]
            if conn.execute(sa.select(t.packages.c.id).where(t.packages.c.id == package_id)).first() is None:
                conn.execute(t.packages.insert().values(id=package_id, tenant=rows[0]["tenant"], state="STORED", created_at=now, closed_at=now,
                                                        member_bytes=sum(r["length"] for r in rows), object_id=object_id,
                                                        manifest_key=manifest_key, verify_problems=[]))
            for row in rows:
                if conn.execute(sa.select(t.requests.c.id).where(t.requests.c.tenant == row["tenant"],
                                                                 t.requests.c.request_id == row["request_id"])).first():
                    continue
                pk = conn.execute(t.requests.insert().values(
                    tenant=row["tenant"], request_id=row["request_id"], body=None, received_at=now, updated_at=now, status=t.SUCCESS,
                    messages=[f"rebuilt from {manifest_key}"], algorithm=row["algorithm"], checksum=row["checksum"],
                    object_id=object_id, deduplicated=False, size=row["length"])).inserted_primary_key[0]
                conn.execute(t.package_members.insert().values(request_pk=pk, package_id=package_id, tenant=row["tenant"], name=row["name"],
                                                               size=row["length"], sha256=row["sha256"], offset=row["offset"],
                                                               length=row["length"]))
                counts["members"] += 1
        counts["manifests"] += 1
    for key in keys:
        if key.endswith(packaging.MANIFEST_SUFFIX) or key in package_keys:
            continue
        try:
            head = transfer.head_checksum(s3, bucket, key)
        except ClientError as exc:
            log.warning("rebuild: cannot read s3://%s/%s: %s", bucket, key, exc)
            continue
        meta = head.get("Metadata", {})
        tenant = key[len(prefix):].lstrip("/").split("/", 1)[0]
        with catalog.engine.begin() as conn:
            object_id = _object(conn, bucket, key, tenant, head, meta.get("sha256", ""), now)
            counts["restores"] += _restore_state(conn, object_id, head, now)
            for algorithm, value in ((meta.get("source-algorithm"), meta.get("source-checksum")), ("SHA-256", meta.get("sha256"))):
                if algorithm and value and conn.execute(sa.select(t.object_checksums.c.object_id).where(
                        t.object_checksums.c.object_id == object_id, t.object_checksums.c.algorithm == algorithm)).first() is None:
                    conn.execute(t.object_checksums.insert().values(object_id=object_id, algorithm=algorithm, checksum=value))
        counts["objects"] += 1
    written = [(k, e) for k in ledger_keys for e in ledger.parse(s3.get_object(Bucket=bucket, Key=k)["Body"].read())]
    moved = _rebuild_moves(catalog, s3, written, now, counts)
    entries = ledger.latest(e for _, e in written)
    for entry in entries.values():
        with catalog.engine.begin() as conn:
            outcome = _ledger_request(conn, entry, now, moved)
        counts["ledger_requests" if outcome else "unresolved"] += outcome is not None
        if outcome is False:
            log.warning("rebuild: request %s of %s names %s, which the bucket does not hold", entry["requestId"], entry["tenant"],
                        entry["storedFileUrl"])
    if vault_prefix is not None:
        from glacier_pipelines.flows.vault.ledger import rebuild_vaults

        counts.update(rebuild_vaults(catalog, s3, vault_bucket or bucket, vault_prefix))
    return counts


def _rebuild_moves(catalog: Catalog, s3: Any, written: list[tuple[str, dict[str, Any]]], now: datetime,
                   counts: dict[str, int]) -> dict[tuple[str, str], tuple[str, str]]:
    """Recreate each move's row from its last ledger line, and the object it made when the bucket pass did not (a move in
    a source bucket); returns where finished moves took objects: (bucket, source key) -> (bucket, destination key)."""
    store = MoveStore(catalog)
    keys = {}
    for key, entry in written:
        if ledger.is_move(entry):
            keys[(entry["kind"], entry["bucket"], entry["sourceKey"], entry["destBucket"], entry["destKey"],
                  entry.get("requestId") or "")] = key
    moved: dict[tuple[str, str], tuple[str, str]] = {}
    for identity, entry in ledger.latest_moves(e for _, e in written).items():
        dest = (entry["destBucket"], entry["destKey"])
        object_id = None
        if entry["status"] in FINISHED:
            if (entry["bucket"], entry["sourceKey"]) != dest:
                moved[(entry["bucket"], entry["sourceKey"])] = dest
            with catalog.engine.begin() as conn:
                object_id = conn.execute(sa.select(t.objects.c.id)
                                         .where(t.objects.c.bucket == dest[0], t.objects.c.key == dest[1])).scalar()
            if object_id is None:
                try:
                    head = transfer.head_checksum(s3, *dest)
                except ClientError as exc:
                    log.warning("rebuild: move of s3://%s/%s: s3://%s/%s cannot be read: %s", entry["bucket"], entry["sourceKey"],
                                *dest, exc)
                    head = None
                if head is not None:
                    with catalog.engine.begin() as conn:
                        object_id = _object(conn, dest[0], dest[1], entry["tenant"], head, entry.get("sha256") or "", now)
                        counts["restores"] += _restore_state(conn, object_id, head, now)
            if object_id is not None and entry["kind"] == "MOVE":
                with catalog.engine.begin() as conn:
                    _add_checksums(conn, object_id, entry.get("objectChecksums") or {})
        counts["moves"] += store.insert_from_ledger(entry, object_id, keys[identity])
    return moved


def _add_checksums(conn: Any, object_id: int, digests: dict[str, str]) -> None:
    c = t.object_checksums
    known = {r[0] for r in conn.execute(sa.select(c.c.algorithm).where(c.c.object_id == object_id))}
    for algorithm, value in digests.items():
        if algorithm not in known and value:
            conn.execute(c.insert().values(object_id=object_id, algorithm=algorithm, checksum=value.lower()))


def _ledger_request(conn: Any, entry: dict[str, Any], now: datetime,
                    moved: dict[tuple[str, str], tuple[str, str]] | None = None) -> bool | None:
    """Recreate (or complete) one answered request from its ledger line: True when recorded, None when it already was,
    False when the object it names is not in the bucket (nor where a move took it)."""
    if entry.get("status") == "DELETED":  # deleted on request (flows/deletion.py): never recreated as answered
        conn.execute(t.requests.update().where(t.requests.c.tenant == entry["tenant"], t.requests.c.request_id == entry["requestId"])
                     .values(status="DELETED", updated_at=now))
        return None
    obj_bucket, obj_key, member = packaging.parse_member_url(entry["storedFileUrl"])
    object_id = conn.execute(sa.select(t.objects.c.id).where(t.objects.c.bucket == obj_bucket, t.objects.c.key == obj_key)).scalar()
    for _ in range(10):  # the file was moved since it was answered (trash, --to-archive): follow it, a move at a time
        if object_id is not None or (obj_bucket, obj_key) not in (moved or {}):
            break
        obj_bucket, obj_key = moved[(obj_bucket, obj_key)]
        object_id = conn.execute(sa.select(t.objects.c.id).where(t.objects.c.bucket == obj_bucket, t.objects.c.key == obj_key)).scalar()
    if object_id is None:
        return False
    r = t.requests
    values = {"status": t.SUCCESS, "algorithm": entry.get("algorithm"), "checksum": (entry.get("checksum") or "").lower() or None,
              "object_id": object_id, "deduplicated": bool(entry.get("deduplicated")), "size": entry.get("size"),
              "width": entry.get("width"), "height": entry.get("height"), "updated_at": now}
    existing = conn.execute(sa.select(r.c.id, r.c.status).where(r.c.tenant == entry["tenant"], r.c.request_id == entry["requestId"])).first()
    if existing is not None:
        conn.execute(r.update().where(r.c.id == existing.id).values(**{k: v for k, v in values.items() if v is not None}))
        pk, created = existing.id, False
    else:
        pk = conn.execute(r.insert().values(tenant=entry["tenant"], request_id=entry["requestId"], body=None, received_at=now,
                                            messages=["rebuilt from the request ledger"], **values)).inserted_primary_key[0]
        created = True
    if member is not None and conn.execute(sa.select(t.package_members.c.request_pk).where(t.package_members.c.request_pk == pk)).first() is None:
        pm, p = t.package_members, t.packages
        placed = conn.execute(sa.select(pm).join(p, p.c.id == pm.c.package_id).where(p.c.object_id == object_id, pm.c.name == member)
                              .limit(1)).first()
        if placed is not None:
            conn.execute(pm.insert().values(request_pk=pk, package_id=placed.package_id, tenant=entry["tenant"], name=member,
                                            size=placed.size, sha256=placed.sha256, offset=placed.offset, length=placed.length))
    return True if created else None


def _restore_state(conn: Any, object_id: int, head: dict[str, Any], now: datetime) -> int:
    """An archived object's restore in progress (or its restored copy) as S3 reports it; 1 when recorded."""
    try:
        state = events.parse_restore_header(head.get("Restore"))
    except events.EventParseError as exc:
        log.warning("rebuild: object %s has an unreadable restore state: %s", object_id, exc)
        return 0
    if state is None or conn.execute(sa.select(t.object_restores.c.object_id).where(t.object_restores.c.object_id == object_id)).first():
        return 0
    ongoing, expires = state.ongoing, state.expiry
    # The tier and days asked for are not in S3's answer: S3's default tier, and the days left, are recorded.
    days = max(1, -(-int((expires - now).total_seconds()) // 86400)) if expires else 1
    conn.execute(t.object_restores.insert().values(object_id=object_id, state="REQUESTED" if ongoing else "RESTORED", tier="Standard",
                                                   days=days, requested_at=now, restored_at=None if ongoing else now, expires_at=expires,
                                                   next_poll_at=now, poll_attempts=0))
    return 1


def _object(conn: Any, bucket: str, key: str, tenant: str, head: dict[str, Any], sha256: str, now: datetime) -> int:
    existing = conn.execute(sa.select(t.objects.c.id).where(t.objects.c.bucket == bucket, t.objects.c.key == key)).scalar()
    if existing is not None:
        return existing
    object_id = conn.execute(t.objects.insert().values(
        tenant=tenant, bucket=bucket, key=key, storage_class=head.get("StorageClass") or "STANDARD", size=head["ContentLength"],
        sha256=sha256, s3_checksum=head.get("ChecksumSHA256") or "", etag=(head.get("ETag") or "").strip('"'), stored_at=now,
    )).inserted_primary_key[0]
    if sha256:
        conn.execute(t.object_checksums.insert().values(object_id=object_id, algorithm="SHA-256", checksum=sha256))
    return object_id
