"""Catalog queries of server-side moves and soft deletes: progress per object, the objects they record, and their ledger.

Every change to a move's row clears its ``ledger_key``: the row is written to the move ledger
(core/ledger.py) again once it is terminal, so the ledger in S3 always ends with the row as it is.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.base import CatalogStore
from glacier_pipelines.catalog.store import StoredObject, _object

MOVE, TRASH = "MOVE", "TRASH"
COPYING, COPIED, DONE, SKIPPED, FAILED = "COPYING", "COPIED", "DONE", "SKIPPED", "FAILED"
FINISHED = (DONE, SKIPPED)
LEDGERED = (DONE, SKIPPED, FAILED)  # statuses written to the move ledger (the others change again soon)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def identity(kind: str, bucket: str, source_key: str, dest_bucket: str, dest_key: str, request_id: str = "") -> str:
    """The key of one move: the same object moved to the same place for the same reason is the same move."""
    return hashlib.sha256(json.dumps([kind, bucket, source_key, dest_bucket, dest_key, request_id]).encode("utf-8")).hexdigest()


class MoveStore(CatalogStore):
    # ---- progress -------------------------------------------------------------------------
    def get(self, kind: str, bucket: str, source_key: str, dest_bucket: str, dest_key: str, request_id: str = "") -> dict[str, Any] | None:
        q = sa.select(t.moves).where(t.moves.c.identity == identity(kind, bucket, source_key, dest_bucket, dest_key, request_id))
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return dict(row._mapping) if row else None

    def begin(
        self,
        *,
        tenant: str,
        kind: str,
        bucket: str,
        source_key: str,
        dest_bucket: str,
        dest_key: str,
        storage_class: str,
        verification: str,
        status: str = COPYING,
        request_id: str = "",
        run_id: str | None = None,
        **fields: Any,
    ) -> int:
        """Create or reset the row of one move (its identity is kind, source, destination and request)."""
        values = {
            "tenant": tenant,
            "storage_class": storage_class,
            "status": status,
            "verification": verification,
            "run_id": run_id,
            "updated_at": _now(),
            "ledger_key": None,
            **fields,
        }

        def tx() -> int:
            with self.engine.begin() as conn:
                m = t.moves
                key = identity(kind, bucket, source_key, dest_bucket, dest_key, request_id)
                existing = conn.execute(sa.select(m.c.id).where(m.c.identity == key)).scalar()
                if existing is not None:
                    conn.execute(m.update().where(m.c.id == existing).values(**values))
                    return existing
                return conn.execute(
                    m.insert().values(  # type: ignore[index]  # an INSERT has its key
                        identity=key,
                        kind=kind,
                        bucket=bucket,
                        source_key=source_key,
                        dest_bucket=dest_bucket,
                        dest_key=dest_key,
                        request_id=request_id,
                        created_at=_now(),
                        messages=fields.get("messages", []),
                        **{k: v for k, v in values.items() if k != "messages"},
                    )
                ).inserted_primary_key[0]

        return self.catalog._with_retry(tx)

    def update(self, move_id: int, **fields: Any) -> None:
        def tx() -> None:
            with self.engine.begin() as conn:
                conn.execute(t.moves.update().where(t.moves.c.id == move_id).values(updated_at=_now(), ledger_key=None, **fields))

        self.catalog._with_retry(tx)

    # ---- the move ledger -------------------------------------------------------------------
    def unledgered(self, tenant: str, limit: int = 10_000) -> list[dict[str, Any]]:
        """The tenant's terminal rows not yet in the ledger as they are now, each with its object's digests."""
        m, c = t.moves, t.object_checksums
        q = (
            sa.select(m)
            .where(m.c.tenant == tenant, m.c.status.in_(LEDGERED), m.c.ledger_key.is_(None))
            .order_by(m.c.updated_at, m.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
            for row in rows:
                row["object_checksums"] = (
                    {a: v for a, v in conn.execute(sa.select(c.c.algorithm, c.c.checksum).where(c.c.object_id == row["object_id"]))}
                    if row["object_id"]
                    else {}
                )
        return rows

    def mark_ledgered(self, rows: list[dict[str, Any]], key: str) -> None:
        """Note that ``key`` holds these rows; a row changed since it was read stays unledgered (written next time)."""

        def tx() -> None:
            with self.engine.begin() as conn:
                for row in rows:
                    conn.execute(
                        t.moves.update().where(t.moves.c.id == row["id"], t.moves.c.updated_at == row["updated_at"]).values(ledger_key=key)
                    )

        self.catalog._with_retry(tx)

    def insert_from_ledger(self, entry: dict[str, Any], object_id: int | None, ledger_key: str) -> bool:
        """Recreate one move's row from its ledger line (catalog rebuild); False when the row exists already.

        A soft delete that moved its object takes the object's digests out of the content lookups again, as the trash did.
        """
        key = identity(
            entry["kind"], entry["bucket"], entry["sourceKey"], entry["destBucket"], entry["destKey"], entry.get("requestId") or ""
        )
        now = _now()

        def tx() -> bool:
            with self.engine.begin() as conn:
                if conn.execute(sa.select(t.moves.c.id).where(t.moves.c.identity == key)).first() is not None:
                    return False
                conn.execute(
                    t.moves.insert().values(
                        identity=key,
                        tenant=entry["tenant"],
                        kind=entry["kind"],
                        bucket=entry["bucket"],
                        source_key=entry["sourceKey"],
                        dest_bucket=entry["destBucket"],
                        dest_key=entry["destKey"],
                        request_id=entry.get("requestId") or "",
                        storage_class=entry.get("storageClass") or "",
                        status=entry["status"],
                        verification=entry.get("verification") or "",
                        source_etag=entry.get("sourceEtag"),
                        source_class=entry.get("sourceClass"),
                        size=entry.get("size"),
                        sha256=entry.get("sha256"),
                        s3_checksum=entry.get("s3Checksum"),
                        checksum_algorithm=entry.get("checksumAlgorithm"),
                        verified_against=entry.get("verifiedAgainst"),
                        checksums=entry.get("checksums"),
                        parts=entry.get("parts"),
                        object_id=object_id,
                        messages=list(entry.get("messages") or []),
                        run_id=entry.get("runId"),
                        copied_by=entry.get("copiedBy"),
                        created_at=now,
                        updated_at=now,
                        ledger_key=ledger_key,
                    )
                )
                moved = (entry["bucket"], entry["sourceKey"]) != (entry["destBucket"], entry["destKey"])
                if entry["kind"] == TRASH and entry["status"] in FINISHED and moved and object_id is not None:
                    conn.execute(t.object_checksums.delete().where(t.object_checksums.c.object_id == object_id))
                return True

        return self.catalog._with_retry(tx)

    def rows(self, tenant: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(t.moves).order_by(t.moves.c.id)
        if tenant is not None:
            q = q.where(t.moves.c.tenant == tenant)
        if kind is not None:
            q = q.where(t.moves.c.kind == kind)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # ---- objects ---------------------------------------------------------------------------
    def object_at(self, bucket: str, key: str) -> tuple[StoredObject | None, dict[str, str]]:
        """The catalog's object at ``bucket/key`` and every digest the catalog knows of it."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.objects).where(t.objects.c.bucket == bucket, t.objects.c.key == key)).first()
            if row is None:
                return None, {}
            obj = _object(row)
            known = {
                a: c
                for a, c in conn.execute(
                    sa.select(t.object_checksums.c.algorithm, t.object_checksums.c.checksum).where(t.object_checksums.c.object_id == obj.id)
                )
            }
        return obj, known

    def record(
        self,
        move_id: int,
        *,
        tenant: str,
        bucket: str,
        source_key: str,
        dest_bucket: str,
        dest_key: str,
        storage_class: str,
        size: int,
        sha256: str | None,
        s3_checksum: str,
        etag: str | None,
        checksums: dict[str, str],
        status: str,
        run_id: str | None,
        move_fields: dict[str, Any],
        withdraw: bool = False,
    ) -> int:
        """Record the object where it now lives, like any archived object, and finish its move row, in one transaction.

        The catalog row of the source (when the object was already known there) follows the
        bytes to the destination key, so the requests that point at it keep resolving. With
        ``withdraw`` (a soft delete) the object's digests leave the content lookups, so no new
        request is ever deduplicated onto a file in the trash; the move row keeps them.
        """

        def tx() -> int:
            with self.engine.begin() as conn:
                o = t.objects
                at_dest = conn.execute(sa.select(o).where(o.c.bucket == dest_bucket, o.c.key == dest_key)).first()
                at_source = (
                    None
                    if (bucket, source_key) == (dest_bucket, dest_key)
                    else conn.execute(sa.select(o).where(o.c.bucket == bucket, o.c.key == source_key)).first()
                )
                row = at_dest or at_source
                values = {
                    "storage_class": storage_class,
                    "size": size,
                    "s3_checksum": s3_checksum,
                    "etag": etag,
                    "bucket": dest_bucket,
                    "key": dest_key,
                }
                if sha256:
                    values["sha256"] = sha256
                if row is None:
                    object_id = conn.execute(
                        o.insert().values(  # type: ignore[index]  # an INSERT has its key
                            tenant=tenant, stored_at=_now(), run_id=run_id, **{"sha256": "", **values}
                        )
                    ).inserted_primary_key[0]
                else:
                    object_id = row._mapping["id"]
                    if row._mapping["sha256"] and sha256 and row._mapping["sha256"] != sha256:
                        # The bytes at this key are not the ones the catalog recorded: the old digests no longer hold.
                        conn.execute(t.object_checksums.delete().where(t.object_checksums.c.object_id == object_id))
                    conn.execute(o.update().where(o.c.id == object_id).values(**values))
                known = {
                    r[0] for r in conn.execute(sa.select(t.object_checksums.c.algorithm).where(t.object_checksums.c.object_id == object_id))
                }
                for algorithm, value in checksums.items():
                    if algorithm not in known:
                        conn.execute(t.object_checksums.insert().values(object_id=object_id, algorithm=algorithm, checksum=value.lower()))
                fields = dict(move_fields)
                if withdraw:
                    c = t.object_checksums
                    held = conn.execute(sa.select(c.c.algorithm, c.c.checksum).where(c.c.object_id == object_id))
                    fields["checksums"] = {a: v for a, v in held}
                    conn.execute(c.delete().where(c.c.object_id == object_id))
                conn.execute(
                    t.moves.update()
                    .where(t.moves.c.id == move_id)
                    .values(status=status, object_id=object_id, updated_at=_now(), run_id=run_id, ledger_key=None, **fields)
                )
                return object_id

        return self.catalog._with_retry(tx)

    # ---- soft deletes ----------------------------------------------------------------------
    def request_object(self, tenant: str, request_id: str) -> tuple[dict[str, Any] | None, StoredObject | None, str | None]:
        """(request row, its stored object, the package id when the file is a package member) for one of the tenant's requests."""
        r, pm = t.requests, t.package_members
        with self.engine.connect() as conn:
            req = conn.execute(sa.select(r).where(r.c.tenant == tenant, r.c.request_id == request_id)).first()
            if req is None:
                return None, None, None
            package = conn.execute(sa.select(pm.c.package_id).where(pm.c.request_pk == req._mapping["id"])).scalar()
            obj = None
            if req._mapping["object_id"] is not None:
                row = conn.execute(sa.select(t.objects).where(t.objects.c.id == req._mapping["object_id"])).first()
                obj = _object(row) if row else None
        return dict(req._mapping), obj, package

    def trashed_requests(self, tenant: str) -> set[str]:
        m = t.moves
        q = sa.select(m.c.request_id).where(m.c.tenant == tenant, m.c.kind == TRASH, m.c.status.in_(FINISHED))
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(q)}

    def requests_using(self, tenant: str, object_id: int) -> list[str]:
        """Successful requests of the tenant whose file is this object."""
        r = t.requests
        q = sa.select(r.c.request_id).where(r.c.tenant == tenant, r.c.object_id == object_id, r.c.status == t.SUCCESS).order_by(r.c.id)
        with self.engine.connect() as conn:
            return [x[0] for x in conn.execute(q)]
