"""Catalog side of the operators' trash (``flows/trash.py``): the ``trash`` table, and what trashing withdraws and untrash gives back.

A trashed file's storage request keeps its status (``SUCCESS``): restores, availability and
deletion requests answer as before. Its bytes stay a dedupe target while they stay where they
are: a new request for the same content is one more reference, which the purge respects. Only an
object moved under the trash prefix (readable classes, ``flows/moves.trash``) leaves the content
index; its digests are kept on the trash row so that untrash gives them back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.base import CatalogStore
from glacier_pipelines.catalog.rows import StoredObject, _object

TRASHED, RESTORED, PURGED, DELETED = "TRASHED", "RESTORED", "PURGED", "DELETED"
CATALOG, MOVED = "catalog", "moved"
UNDONE = "UNDONE"  # a TRASH row of ``moves`` whose copy was moved back by untrash


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo else value.replace(tzinfo=timezone.utc)


def _row(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    for name in ("trashed_at", "deadline", "closed_at"):
        out[name] = _utc(out.get(name))
    return out


class TrashStore(CatalogStore):
    # ---- what a request id names ----------------------------------------------------------
    def request(self, tenant: str, request_id: str) -> tuple[dict[str, Any] | None, StoredObject | None, dict[str, Any] | None]:
        """(storage request, its object, its membership {package_id, name} or None) for one of the tenant's requests."""
        r, pm = t.requests, t.package_members
        with self.engine.connect() as conn:
            req = conn.execute(sa.select(r).where(r.c.tenant == tenant, r.c.request_id == request_id)).first()
            if req is None:
                return None, None, None
            member = conn.execute(sa.select(pm.c.package_id, pm.c.name).where(pm.c.request_pk == req.id)).first()
            obj = None
            if req.object_id is not None:
                found = conn.execute(sa.select(t.objects).where(t.objects.c.id == req.object_id)).first()
                obj = _object(found) if found else None
        return dict(req._mapping), obj, dict(member._mapping) if member else None

    def open_row(self, request_pk: int) -> dict[str, Any] | None:
        q = sa.select(t.trash).where(t.trash.c.request_pk == request_pk, t.trash.c.state == TRASHED)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return _row(row) if row else None

    def others_using(self, object_id: int, request_pk: int) -> list[str]:
        """Request ids other than ``request_pk`` whose live, untrashed file is this object."""
        r, tr = t.requests, t.trash
        in_trash = sa.exists().where(tr.c.request_pk == r.c.id, tr.c.state == TRASHED)
        q = sa.select(r.c.request_id).where(r.c.object_id == object_id, r.c.status == t.SUCCESS, r.c.id != request_pk, ~in_trash)
        with self.engine.connect() as conn:
            return [x[0] for x in conn.execute(q.order_by(r.c.id))]

    # ---- trash and untrash -----------------------------------------------------------------
    def trash(
        self,
        *,
        tenant: str,
        request: dict[str, Any],
        obj: StoredObject | None,
        member: str | None,
        deadline: datetime,
        how: str,
        messages: list[str],
        original_key: str | None = None,
        withdrawn: dict[str, str] | None = None,
    ) -> int:
        """Record one file in the trash (``withdrawn``: the digests a move under the trash prefix took out of the content index)."""

        def tx() -> int:
            with self.engine.begin() as conn:
                held = dict(withdrawn or {})
                return conn.execute(
                    t.trash.insert().values(  # type: ignore[index]  # an INSERT has its key
                        tenant=tenant,
                        request_pk=request["id"],
                        request_id=request["request_id"],
                        object_id=obj.id if obj else None,
                        member=member,
                        state=TRASHED,
                        how=how,
                        withdrawn=held or None,
                        original_key=original_key,
                        trashed_at=_now(),
                        deadline=deadline,
                        messages=messages,
                    )
                ).inserted_primary_key[0]

        return self.catalog._with_retry(tx)

    def moved_rows(self, object_id: int) -> list[dict[str, Any]]:
        """TRASHED rows of this object whose trash moved it under the trash prefix (untrash moves it back first)."""
        q = sa.select(t.trash).where(t.trash.c.object_id == object_id, t.trash.c.state == TRASHED, t.trash.c.how == MOVED)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(q)]

    def moved_back(self, row_id: int, tenant: str, request_id: str) -> None:
        """A moved trash was copied back: the row becomes a mark (its file stays trashed) and its ``moves`` TRASH row is undone."""

        def tx() -> None:
            with self.engine.begin() as conn:
                conn.execute(t.trash.update().where(t.trash.c.id == row_id).values(how=CATALOG, original_key=None))
                m = t.moves
                conn.execute(
                    m.update()
                    .where(m.c.tenant == tenant, m.c.kind == "TRASH", m.c.request_id == request_id)
                    .values(status=UNDONE, updated_at=_now())
                )

        self.catalog._with_retry(tx)

    def untrash(self, row_id: int, message: str) -> None:
        """The file leaves the trash: every digest withdrawn from its object (by this row or another of the object) comes back."""

        def tx() -> None:
            with self.engine.begin() as conn:
                tr, c = t.trash, t.object_checksums
                row = conn.execute(sa.select(tr).where(tr.c.id == row_id)).one()
                if row.object_id is not None:
                    holders = conn.execute(
                        sa.select(tr.c.id, tr.c.withdrawn).where(
                            tr.c.object_id == row.object_id, tr.c.state == TRASHED, tr.c.withdrawn.is_not(None)
                        )
                    ).all()
                    known = {a for (a,) in conn.execute(sa.select(c.c.algorithm).where(c.c.object_id == row.object_id))}
                    for holder in holders:
                        for algorithm, value in (holder.withdrawn or {}).items():
                            if algorithm not in known:
                                conn.execute(c.insert().values(object_id=row.object_id, algorithm=algorithm, checksum=value))
                                known.add(algorithm)
                        conn.execute(tr.update().where(tr.c.id == holder.id).values(withdrawn=None))
                conn.execute(
                    tr.update()
                    .where(tr.c.id == row_id, tr.c.state == TRASHED)
                    .values(state=RESTORED, closed_at=_now(), messages=list(row.messages or []) + [message])
                )

        self.catalog._with_retry(tx)

    # ---- the end of the grace period -------------------------------------------------------
    def due(self, now: datetime, limit: int = 200, tenant: str | None = None) -> list[dict[str, Any]]:
        """TRASHED rows whose grace period is over, oldest deadline first."""
        q = sa.select(t.trash).where(t.trash.c.state == TRASHED, t.trash.c.deadline <= now).order_by(t.trash.c.deadline).limit(limit)
        if tenant is not None:
            q = q.where(t.trash.c.tenant == tenant)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(q)]

    def close(self, conn: Any, request_pks: Sequence[int], state: str, message: str) -> None:
        """Inside a deletion's transaction: the open trash rows of these requests end (PURGED or DELETED)."""
        tr = t.trash
        for row in conn.execute(sa.select(tr.c.id, tr.c.messages).where(tr.c.request_pk.in_(list(request_pks)), tr.c.state == TRASHED)):
            conn.execute(
                tr.update().where(tr.c.id == row.id).values(state=state, closed_at=_now(), messages=list(row.messages or []) + [message])
            )

    def close_now(self, request_pks: Sequence[int], state: str, message: str) -> None:
        def tx() -> None:
            with self.engine.begin() as conn:
                self.close(conn, request_pks, state, message)

        self.catalog._with_retry(tx)

    def rows(self, tenant: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(t.trash).order_by(t.trash.c.id)
        if tenant is not None:
            q = q.where(t.trash.c.tenant == tenant)
        if state is not None:
            q = q.where(t.trash.c.state == state)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(q)]
