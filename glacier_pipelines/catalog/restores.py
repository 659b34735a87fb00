"""Catalog queries of the restore path: restore requests per file, and each object's restore state."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.base import CatalogStore
from glacier_pipelines.catalog.store import StoredObject, _object
from glacier_pipelines.core import packaging
from glacier_pipelines.core.restores import FileSelector


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without a zone; everything stored here is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _member(row: Any) -> dict[str, Any] | None:
    m = row._mapping
    if m.get("member_name") is None or m.get("member_offset") is None:
        return None
    return {"name": m["member_name"], "offset": m["member_offset"], "length": m["member_length"], "sha256": m["member_sha256"]}


def _now() -> datetime:
    return datetime.now(timezone.utc)


class RestoreStore(CatalogStore):
    # ---- resolving files ------------------------------------------------------------------
    def resolve(self, tenant: str, selector: FileSelector) -> tuple[StoredObject | None, str | None, dict[str, Any] | None]:
        """The tenant's object named by ``selector``, the storage request id when known, and the package member if it is one.

        Only the tenant's own rows are searched, so another tenant's file is simply not found.
        """
        o, r, pm = t.objects, t.requests, t.package_members
        member_cols = (
            pm.c.name.label("member_name"),
            pm.c.offset.label("member_offset"),
            pm.c.length.label("member_length"),
            pm.c.sha256.label("member_sha256"),
        )  # labelled: objects has a sha256 column too
        with self.engine.connect() as conn:
            if selector.requestId is not None:
                row = conn.execute(
                    sa.select(o, *member_cols)
                    .select_from(r.join(o, r.c.object_id == o.c.id).outerjoin(pm, pm.c.request_pk == r.c.id))
                    .where(r.c.tenant == tenant, r.c.request_id == selector.requestId, r.c.status == t.SUCCESS)
                ).first()
                return (_object(row), selector.requestId, _member(row)) if row else (None, None, None)
            if selector.checksum is not None:
                row = conn.execute(
                    sa.select(o)
                    .join(t.object_checksums, t.object_checksums.c.object_id == o.c.id)
                    .where(o.c.tenant == tenant, t.object_checksums.c.checksum == selector.checksum)
                    .order_by(o.c.id)
                    .limit(1)
                ).first()
                if row is None:  # a package member, by its SHA-256 or the checksum its request announced
                    row = conn.execute(
                        sa.select(o, *member_cols, r.c.request_id)
                        .select_from(pm.join(r, r.c.id == pm.c.request_pk).join(o, o.c.id == r.c.object_id))
                        .where(
                            pm.c.tenant == tenant,
                            r.c.status == t.SUCCESS,
                            pm.c.offset.is_not(None),
                            sa.or_(pm.c.sha256 == selector.checksum, r.c.checksum == selector.checksum),
                        )
                        .limit(1)
                    ).first()
                    return (_object(row), row.request_id, _member(row)) if row else (None, None, None)
            else:
                bucket, key, name = packaging.parse_member_url(selector.url or "")
                if name is not None:
                    row = conn.execute(
                        sa.select(o, *member_cols, r.c.request_id)
                        .select_from(pm.join(r, r.c.id == pm.c.request_pk).join(o, o.c.id == r.c.object_id))
                        .where(o.c.tenant == tenant, o.c.bucket == bucket, o.c.key == key, pm.c.name == name, r.c.status == t.SUCCESS)
                        .limit(1)
                    ).first()
                    return (_object(row), row.request_id, _member(row)) if row else (None, None, None)
                row = conn.execute(sa.select(o).where(o.c.tenant == tenant, o.c.bucket == bucket, o.c.key == key)).first()
            if row is None:
                return None, None, None
            obj = _object(row)
            request_id = conn.execute(
                sa.select(r.c.request_id).where(r.c.object_id == obj.id, r.c.tenant == tenant).order_by(r.c.id).limit(1)
            ).scalar()
            return obj, request_id, None

    def object_at(self, bucket: str, key: str) -> StoredObject | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.objects).where(t.objects.c.bucket == bucket, t.objects.c.key == key)).first()
        return _object(row) if row else None

    def get_object(self, object_id: int) -> StoredObject:
        with self.engine.connect() as conn:
            return _object(conn.execute(sa.select(t.objects).where(t.objects.c.id == object_id)).one())

    # ---- restore requests -----------------------------------------------------------------
    def add(self, rows: Sequence[dict[str, Any]]) -> None:
        now = _now()

        def tx() -> None:
            with self.engine.begin() as conn:
                for row in rows:
                    conn.execute(t.restores.insert().values(requested_at=now, updated_at=now, **row))

        self.catalog._with_retry(tx)

    def update(self, ids: Iterable[int], *, add_message: str | None = None, **fields: Any) -> None:
        ids = list(ids)
        if not ids:
            return

        def tx() -> None:
            with self.engine.begin() as conn:
                if add_message:
                    for pk, messages in conn.execute(sa.select(t.restores.c.id, t.restores.c.messages).where(t.restores.c.id.in_(ids))):
                        conn.execute(t.restores.update().where(t.restores.c.id == pk).values(messages=list(messages or []) + [add_message]))
                conn.execute(t.restores.update().where(t.restores.c.id.in_(ids)).values(updated_at=_now(), **fields))

        self.catalog._with_retry(tx)

    def rows(
        self,
        *,
        tenant: str | None = None,
        statuses: Sequence[str] | None = None,
        object_id: int | None = None,
        restore_id: str | None = None,
    ) -> list[dict[str, Any]]:
        q = sa.select(t.restores).order_by(t.restores.c.id)
        if tenant is not None:
            q = q.where(t.restores.c.tenant == tenant)
        if statuses:
            q = q.where(t.restores.c.status.in_(statuses))
        if object_id is not None:
            q = q.where(t.restores.c.object_id == object_id)
        if restore_id is not None:
            q = q.where(t.restores.c.restore_id == restore_id)
        with self.engine.connect() as conn:
            out = []
            for row in conn.execute(q):
                d = dict(row._mapping)
                for k in ("requested_at", "updated_at", "ready_at", "expires_at", "notified_at"):
                    d[k] = utc(d[k])
                out.append(d)
            return out

    def tenants_with_work(self) -> list[str]:
        """Tenants with restore requests not yet started, or started and now restored."""
        r, s = t.restores, t.object_restores
        q = (
            sa.select(r.c.tenant)
            .select_from(r.outerjoin(s, s.c.object_id == r.c.object_id))
            .where(sa.or_(r.c.status == "PENDING", sa.and_(r.c.status == "IN_PROGRESS", s.c.state.in_(("RESTORED", "FAILED")))))
            .distinct()
        )
        with self.engine.connect() as conn:
            return sorted(x[0] for x in conn.execute(q))

    # ---- object restore state -------------------------------------------------------------
    def object_state(self, object_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.object_restores).where(t.object_restores.c.object_id == object_id)).first()
        if row is None:
            return None
        d = dict(row._mapping)
        for k in ("requested_at", "restored_at", "expires_at", "next_poll_at"):
            d[k] = utc(d[k])
        return d

    def set_object_state(self, object_id: int, **fields: Any) -> None:
        def tx() -> None:
            with self.engine.begin() as conn:
                exists = conn.execute(sa.select(t.object_restores.c.object_id).where(t.object_restores.c.object_id == object_id)).first()
                if exists:
                    conn.execute(t.object_restores.update().where(t.object_restores.c.object_id == object_id).values(**fields))
                else:
                    conn.execute(t.object_restores.insert().values(object_id=object_id, **{"poll_attempts": 0, **fields}))

        self.catalog._with_retry(tx)

    def restored_copies(self, tenant: str) -> list[tuple[int, datetime | None]]:
        """(object id, expiry) of the tenant's objects whose restored copy is, as far as the catalog knows, still there."""
        s, o = t.object_restores, t.objects
        q = sa.select(s.c.object_id, s.c.expires_at).join(o, o.c.id == s.c.object_id).where(o.c.tenant == tenant, s.c.state == "RESTORED")
        with self.engine.connect() as conn:
            return [(oid, utc(expires_at)) for oid, expires_at in conn.execute(q)]

    def objects_to_poll(self, now: datetime, limit: int) -> list[tuple[StoredObject, dict[str, Any]]]:
        """Objects whose restore was requested and whose next poll is due, oldest due first."""
        s = t.object_restores
        q = (
            sa.select(t.objects, s.c.requested_at, s.c.poll_attempts, s.c.tier)
            .join(s, s.c.object_id == t.objects.c.id)
            .where(s.c.state == "REQUESTED", sa.or_(s.c.next_poll_at.is_(None), s.c.next_poll_at <= now))
            .order_by(s.c.next_poll_at)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                (_object(row), {"requested_at": utc(row.requested_at), "poll_attempts": row.poll_attempts, "tier": row.tier})
                for row in conn.execute(q)
            ]


def live_member_copies(conn: Any, tenant: str | None = None) -> dict[str, list[int]]:
    """Bytes of each tenant's restored package-member copies still in S3 (rows READY: deleted when they expire), per tenant."""
    q = sa.select(t.restores.c.tenant, t.restores.c.member).where(t.restores.c.status == "READY")
    if tenant is not None:
        q = q.where(t.restores.c.tenant == tenant)
    held: dict[str, list[int]] = {}
    for name, member in conn.execute(q):  # member is JSON (null for whole objects): filtered here, alike on every database
        if member:
            held.setdefault(name, []).append(int(member.get("length") or 0))
    return held
