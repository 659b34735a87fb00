"""Catalog side of deletion, restoration and availability requests (``core/worker_requests.py``).

Two tables of their own (worker_request_tables.py), created on first use: ``worker_requests`` and
``deletions``. A deleted storage request keeps its row in ``requests`` with status ``DELETED``; an
object whose last reference was deleted leaves ``objects`` (and every row that pointed at it), so
nothing deduplicates onto it, restores it or reconciles it again. What a deletion selector names is
read by ``DeletionQueries`` (deletion_queries.py), a part of ``WorkerRequestStore``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.deletion_queries import DeletionQueries
from glacier_pipelines.catalog.outbox import retire_answers
from glacier_pipelines.catalog.rows import StoredObject, _now
from glacier_pipelines.catalog.store import Catalog
from glacier_pipelines.catalog.trash import TrashStore
from glacier_pipelines.catalog.worker_request_tables import (
    DELAYED,
    DELETED,
    ERROR,
    NOT_LIVE,
    OPEN,
    PENDING,
    SUBMITTED,
    SUCCESS,
    deletions,
    worker_requests,
)

__all__ = [  # the tables and statuses are imported from here too
    "DELAYED",
    "DELETED",
    "ERROR",
    "NOT_LIVE",
    "OPEN",
    "PENDING",
    "SUBMITTED",
    "SUCCESS",
    "WorkerRequestStore",
    "deletions",
    "worker_requests",
]


class WorkerRequestStore(DeletionQueries):
    """Queries of the worker request types; every answer goes through the catalog's outbox in the same transaction."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.engine = catalog.engine

    # ---- intake --------------------------------------------------------------------------
    def record(self, items: Sequence[dict[str, Any]]) -> list[str]:
        """Persist received requests idempotently by (tenant, request id); for each 'new', 'retried', 'duplicate', 'invalid' or 'conflict'.

        Items: tenant, request_id, kind, owner, session, body, errors. An invalid one is recorded
        ``INVALID_CONTENT`` with its answer queued. A valid resend of a request last answered
        ERROR or INVALID_CONTENT is attempted again (its earlier answers stay in the outbox,
        renamed ``ERROR-1``..., as ``Catalog._attempt_again`` does). A request id already used by a
        storage request of the tenant is refused ('conflict', nothing recorded): the outbox keys
        answers by (tenant, request id), so the two would share one answer.
        """
        now = _now()
        insert = self.catalog._insert_ignoring_duplicates(worker_requests, ["tenant", "request_id"])

        def tx() -> list[str]:
            out = []
            with self.engine.begin() as conn:
                for item in items:
                    errors = list(item.get("errors") or [])
                    row: dict[str, Any] = {k: item.get(k) for k in ("tenant", "request_id", "kind", "owner", "session")}
                    row.update(
                        body=item["body"] if isinstance(item.get("body"), dict) else {},
                        received_at=now,
                        updated_at=now,
                        status=t.INVALID_CONTENT if errors else PENDING,
                        messages=errors,
                    )
                    if (
                        not errors
                        and conn.execute(
                            sa.select(t.requests.c.id).where(
                                t.requests.c.tenant == row["tenant"], t.requests.c.request_id == row["request_id"]
                            )
                        ).first()
                        is not None
                    ):
                        out.append("conflict")
                    elif conn.execute(insert, row).rowcount:
                        if errors:
                            self.catalog._enqueue_response(conn, row["tenant"], row["request_id"], t.INVALID_CONTENT, errors, None)
                        out.append("invalid" if errors else "new")
                    else:
                        out.append("retried" if not errors and self._attempt_again(conn, row) else "duplicate")
            return out

        return self.catalog._with_retry(tx)

    @staticmethod
    def _attempt_again(conn: Any, row: dict[str, Any]) -> bool:
        w = worker_requests
        known = conn.execute(
            sa.select(w.c.id, w.c.status, w.c.messages).where(w.c.tenant == row["tenant"], w.c.request_id == row["request_id"])
        ).first()
        if known is None or known.status not in (t.ERROR, t.INVALID_CONTENT):
            return False
        attempt = retire_answers(conn, row["tenant"], row["request_id"])
        previous = "; ".join(known.messages or [])[:500]
        conn.execute(
            w.update()
            .where(w.c.id == known.id)
            .values(
                status=PENDING,
                kind=row["kind"],
                body=row["body"],
                owner=row["owner"],
                session=row["session"],
                restore_id=None,
                updated_at=row["updated_at"],
                messages=[f"sent again after its answer {known.status} ({previous}): attempt {attempt + 1}"],
            )
        )
        return True

    def taken_ids(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Which (tenant, request id) pairs are ids of requests recorded here, with their kind."""
        w, out, pairs = worker_requests, {}, sorted(keys)
        with self.engine.connect() as conn:
            for start in range(0, len(pairs), 500):  # (tenant, request_id): the unique index answers it
                for tenant, request_id, kind in conn.execute(
                    sa.select(w.c.tenant, w.c.request_id, w.c.kind).where(
                        sa.tuple_(w.c.tenant, w.c.request_id).in_(pairs[start : start + 500])
                    )
                ):
                    out[(tenant, request_id)] = kind
        return out

    def pending(self, kind: str, statuses: Sequence[str] = (PENDING,), limit: int = 500) -> list[dict[str, Any]]:
        q = (
            sa.select(worker_requests)
            .where(worker_requests.c.kind == kind, worker_requests.c.status.in_(list(statuses)))
            .order_by(worker_requests.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def get(self, tenant: str, request_id: str) -> dict[str, Any] | None:
        q = sa.select(worker_requests).where(worker_requests.c.tenant == tenant, worker_requests.c.request_id == request_id)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return dict(row._mapping) if row else None

    def set_status(
        self,
        pk: int,
        status: str,
        *,
        messages: list[str] | None = None,
        restore_id: str | None = None,
        response: tuple[str, list[str], dict[str, Any] | None] | None = None,
    ) -> bool:
        """Move one request on (only from an open status); queue ``response`` (status, messages, content) in the same transaction."""

        def tx() -> bool:
            with self.engine.begin() as conn:
                return self._set_status(conn, pk, status, messages=messages, restore_id=restore_id, response=response)

        return self.catalog._with_retry(tx)

    def _set_status(
        self,
        conn: Any,
        pk: int,
        status: str,
        *,
        messages: list[str] | None = None,
        restore_id: str | None = None,
        response: tuple[str, list[str], dict[str, Any] | None] | None = None,
    ) -> bool:
        w = worker_requests
        row = conn.execute(sa.select(w.c.tenant, w.c.request_id, w.c.status).where(w.c.id == pk)).first()
        if row is None or row.status not in OPEN:
            return False
        values: dict[str, Any] = {"status": status, "updated_at": _now()}
        if messages is not None:
            values["messages"] = messages
        if restore_id is not None:
            values["restore_id"] = restore_id
        changed = conn.execute(w.update().where(w.c.id == pk, w.c.status == row.status).values(**values)).rowcount
        if changed and response is not None:
            self.catalog._enqueue_response(conn, row.tenant, row.request_id, response[0], response[1], response[2])
        return bool(changed)

    # ---- deletion: recording it ----------------------------------------------------------
    def record_deletion(
        self,
        pk: int | None,
        *,
        tenant: str,
        deletion_request_id: str,
        targets: Sequence[dict[str, Any]],
        removed: Sequence[dict[str, Any]],
        response: tuple[str, list[str], dict[str, Any] | None] | None = None,
        trash_state: str = DELETED,
    ) -> bool:
        """In one transaction: the target storage requests become DELETED, removed objects leave the catalog, the answer is queued.

        ``targets``: {pk, request_id, url}; ``removed``: {object (StoredObject), checksums, charge, urls}. ``pk`` None: a
        deletion no worker request asked for (the trash's purge), answered to nobody. Trash rows of the targets close with
        ``trash_state`` (DELETED, or PURGED when the grace period ran out).
        """
        now = _now()

        def tx() -> bool:
            with self.engine.begin() as conn:
                w = worker_requests
                if pk is not None and conn.execute(sa.select(w.c.status).where(w.c.id == pk)).scalar() not in OPEN:
                    return False
                for target in targets:
                    r = t.requests
                    messages = conn.execute(sa.select(r.c.messages).where(r.c.id == target["pk"])).scalar() or []
                    conn.execute(
                        r.update()
                        .where(r.c.id == target["pk"], r.c.status == t.SUCCESS)
                        .values(status=DELETED, updated_at=now, messages=list(messages) + [f"deleted by request {deletion_request_id}"])
                    )
                    conn.execute(
                        deletions.insert().values(
                            tenant=tenant,
                            deletion_request_id=deletion_request_id,
                            what="REQUEST",
                            storage_request_id=target["request_id"],
                            url=target["url"],
                            deleted_at=now,
                        )
                    )
                for item in removed:
                    obj: StoredObject = item["object"]
                    for url in item["urls"]:
                        conn.execute(
                            deletions.insert().values(
                                tenant=tenant,
                                deletion_request_id=deletion_request_id,
                                what="OBJECT",
                                url=url,
                                storage_class=obj.storage_class,
                                size=obj.size,
                                sha256=obj.sha256,
                                checksums=item["checksums"],
                                stored_at=item.get("stored_at"),
                                deleted_at=now,
                                early_deletion_charge_usd=item.get("charge"),
                            )
                        )
                    self._forget_object(conn, obj.id, deletion_request_id)
                TrashStore(self.catalog).close(conn, [target["pk"] for target in targets], trash_state, f"deleted by {deletion_request_id}")
                if pk is None:
                    return True
                assert response is not None
                return self._set_status(conn, pk, response[0], messages=response[1], response=response)

        return self.catalog._with_retry(tx)

    @staticmethod
    def _forget_object(conn: Any, object_id: int, deletion_request_id: str) -> None:
        """Remove an object whose bytes were deleted, and every reference to it (tables added later included)."""
        rs = t.restores
        gone = f"the file was deleted (request {deletion_request_id})"
        for row in conn.execute(
            sa.select(rs.c.id, rs.c.messages, rs.c.status).where(
                rs.c.object_id == object_id, rs.c.status.in_(["PENDING", "IN_PROGRESS", "READY"])
            )
        ):
            conn.execute(
                rs.update()
                .where(rs.c.id == row.id)
                .values(
                    status="FAILED" if row.status != "READY" else "EXPIRED",
                    download_url=None,
                    updated_at=_now(),
                    messages=list(row.messages or []) + [gone],
                )
            )
        conn.execute(t.packages.update().where(t.packages.c.object_id == object_id).values(state=DELETED))
        for table in reversed(t.metadata.sorted_tables):
            for fk in table.foreign_keys:
                if fk.column is not t.objects.c.id:
                    continue
                column = fk.parent
                if column.primary_key or not column.nullable:
                    conn.execute(table.delete().where(column == object_id))
                else:
                    conn.execute(table.update().where(column == object_id).values({column.name: None}))
        conn.execute(t.objects.delete().where(t.objects.c.id == object_id))
