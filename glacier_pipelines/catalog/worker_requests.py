"""Catalog side of deletion, restoration and availability requests (``core/worker_requests.py``).

Two tables of their own, created on first use: ``worker_requests`` (one row per request, its
status and, for a restoration, the restore it rides on) and ``deletions`` (what was deleted, for
audits: the storage requests and the objects whose bytes left S3, with their digests and the
early-deletion charge). A deleted storage request keeps its row in ``requests`` with status
``DELETED``; an object whose last reference was deleted leaves ``objects`` (and every row that
pointed at it), so nothing deduplicates onto it, restores it or reconciles it again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.outbox import retire_answers
from glacier_pipelines.catalog.store import Catalog, StoredObject, _object

DELETED = "DELETED"  # a storage request whose file was deleted on request (terminal)
# Worker request statuses: PENDING (recorded), SUBMITTED (a restoration whose restore was recorded),
# DELAYED (its restore started and DELAYED was answered), then SUCCESS or ERROR.
PENDING, SUBMITTED, DELAYED, SUCCESS, ERROR = "PENDING", "SUBMITTED", "DELAYED", "SUCCESS", "ERROR"
OPEN = (PENDING, SUBMITTED, DELAYED)
NOT_LIVE = (DELETED, t.ERROR, t.INVALID_CONTENT)  # request statuses that no longer hold a reference to bytes

worker_requests = sa.Table(
    "worker_requests",
    t.metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("request_id", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # DELETION, RESTORATION, AVAILABILITY
    sa.Column("owner", sa.String(255)),
    sa.Column("session", sa.String(255)),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("messages", sa.JSON, nullable=False),
    sa.Column("restore_id", sa.String(36)),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("tenant", "request_id", name="uq_worker_requests_tenant_request"),
    sa.Index("ix_worker_requests_kind_status", "kind", "status"),
)

deletions = sa.Table(
    "deletions",
    t.metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("deletion_request_id", sa.String(255), nullable=False),
    sa.Column("what", sa.String(8), nullable=False),  # REQUEST (a reference) or OBJECT (bytes removed from S3)
    sa.Column("storage_request_id", sa.String(255)),
    sa.Column("url", sa.String(2100), nullable=False),
    sa.Column("storage_class", sa.String(32)),
    sa.Column("size", sa.BigInteger),
    sa.Column("sha256", sa.String(64)),
    sa.Column("checksums", sa.JSON),
    sa.Column("stored_at", sa.DateTime(timezone=True)),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("early_deletion_charge_usd", sa.Float),
    sa.Index("ix_deletions_tenant_url", "tenant", "url"),
)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class WorkerRequestStore:
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

    # ---- deletion: what a selector names -------------------------------------------------
    def storage_request(self, tenant: str, request_id: str) -> dict[str, Any] | None:
        r = t.requests
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(r.c.id, r.c.request_id, r.c.status, r.c.object_id, r.c.checksum, r.c.algorithm).where(
                    r.c.tenant == tenant, r.c.request_id == request_id
                )
            ).first()
        return dict(row._mapping) if row else None

    def requests_by_checksum(self, tenant: str, checksum: str) -> list[dict[str, Any]]:
        """The tenant's storage requests whose content has this digest: announced, known for its object, or a member's SHA-256."""
        r, oc, o, pm = t.requests, t.object_checksums, t.objects, t.package_members
        by_object = sa.select(oc.c.object_id).join(o, o.c.id == oc.c.object_id).where(o.c.tenant == tenant, oc.c.checksum == checksum)
        by_member = sa.select(pm.c.request_pk).where(pm.c.tenant == tenant, pm.c.sha256 == checksum)
        standalone = ~sa.exists().where(pm.c.request_pk == r.c.id)
        q = (
            sa.select(r.c.id, r.c.request_id, r.c.status, r.c.object_id)
            .where(
                r.c.tenant == tenant,
                sa.or_(r.c.checksum == checksum, sa.and_(r.c.object_id.in_(by_object), standalone), r.c.id.in_(by_member)),
            )
            .order_by(r.c.id)
        )
        with self.engine.connect() as conn:
            return [dict(x._mapping) for x in conn.execute(q)]

    def requests_at(self, tenant: str, bucket: str, key: str, member: str | None) -> list[dict[str, Any]]:
        """The tenant's storage requests whose file is the object at bucket/key (or that member of the package there)."""
        r, o, pm = t.requests, t.objects, t.package_members
        q = (
            sa.select(r.c.id, r.c.request_id, r.c.status, r.c.object_id)
            .join(o, o.c.id == r.c.object_id)
            .where(r.c.tenant == tenant, o.c.tenant == tenant, o.c.bucket == bucket, o.c.key == key)
        )
        if member is not None:
            q = q.where(sa.exists().where(pm.c.request_pk == r.c.id, pm.c.name == member))
        else:
            q = q.where(~sa.exists().where(pm.c.request_pk == r.c.id))
        with self.engine.connect() as conn:
            return [dict(x._mapping) for x in conn.execute(q.order_by(r.c.id))]

    def was_deleted(self, tenant: str, url: str) -> bool:
        q = sa.select(deletions.c.id).where(deletions.c.tenant == tenant, deletions.c.url == url).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(q).first() is not None

    def object(self, object_id: int) -> StoredObject | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.objects).where(t.objects.c.id == object_id)).first()
        return _object(row) if row else None

    def member_of(self, request_pk: int) -> dict[str, Any] | None:
        """The package membership of a storage request: package id, member name, manifest key."""
        pm, p = t.package_members, t.packages
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(pm.c.package_id, pm.c.name, p.c.manifest_key)
                .join(p, p.c.id == pm.c.package_id)
                .where(pm.c.request_pk == request_pk)
            ).first()
        return dict(row._mapping) if row else None

    def live_references(self, object_id: int, excluding: Sequence[int]) -> int:
        """Requests that still refer to the object's bytes once ``excluding`` (request pks) are deleted."""
        r = t.requests
        q = sa.select(sa.func.count()).where(r.c.object_id == object_id, r.c.status.not_in(NOT_LIVE))
        if excluding:
            q = q.where(r.c.id.not_in(list(excluding)))
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar() or 0)

    def content_in_flight(self, tenant: str, object_id: int) -> bool:
        """Whether a storage request of the tenant not yet stored announces this object's content (it may deduplicate onto it)."""
        r, oc = t.requests, t.object_checksums
        digests = sa.select(oc.c.checksum).where(oc.c.object_id == object_id)
        q = (
            sa.select(r.c.id)
            .where(r.c.tenant == tenant, r.c.status.in_([t.PENDING, t.CLAIMED, t.VERIFIED]), r.c.checksum.in_(digests))
            .limit(1)
        )
        with self.engine.connect() as conn:
            return conn.execute(q).first() is not None

    def stored_at(self, object_id: int) -> datetime | None:
        with self.engine.connect() as conn:
            return utc(conn.execute(sa.select(t.objects.c.stored_at).where(t.objects.c.id == object_id)).scalar())

    def package_at(self, object_id: int) -> dict[str, Any] | None:
        """The package whose tar is this object (id, manifest key, member count), or None for a file stored alone."""
        p, pm = t.packages, t.package_members
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(p.c.id, p.c.manifest_key).where(p.c.object_id == object_id)).first()
            if row is None:
                return None
            members = conn.execute(sa.select(sa.func.count()).where(pm.c.package_id == row.id)).scalar()
        return {"id": row.id, "manifest_key": row.manifest_key, "members": int(members or 0)}

    def package_share_deleted(self, package_id: str, also_deleted: Collection[int] = ()) -> float:
        """Share of the package's member bytes whose requests are no longer live (``also_deleted``: request pks about to be)."""
        pm, r = t.package_members, t.requests
        q = (
            sa.select(pm.c.request_pk, pm.c.size, r.c.status)
            .join(r, r.c.id == pm.c.request_pk)
            .where(pm.c.package_id == package_id, pm.c.offset.is_not(None))
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        total = sum(size for _, size, _ in rows)
        gone = sum(size for pk, size, status in rows if status in NOT_LIVE or pk in also_deleted)
        return gone / total if total else 0.0

    def object_checksums(self, object_id: int) -> dict[str, str]:
        with self.engine.connect() as conn:
            return dict(
                conn.execute(
                    sa.select(t.object_checksums.c.algorithm, t.object_checksums.c.checksum).where(
                        t.object_checksums.c.object_id == object_id
                    )
                ).all()
            )

    def early_deletion_charges(self, tenant: str | None = None) -> list[tuple[str, str, int, int, float]]:
        """(tenant, storage class, objects, bytes, USD) of bytes deleted before their class's minimum duration: by deletion
        requests, the trash's purge and compaction (the old package); for the cost report."""
        d = deletions
        q = (
            sa.select(d.c.tenant, d.c.storage_class, sa.func.count(), sa.func.sum(d.c.size), sa.func.sum(d.c.early_deletion_charge_usd))
            .where(d.c.what == "OBJECT", d.c.early_deletion_charge_usd > 0)
            .group_by(d.c.tenant, d.c.storage_class)
            .order_by(d.c.tenant, d.c.storage_class)
        )
        if tenant is not None:
            q = q.where(d.c.tenant == tenant)
        with self.engine.connect() as conn:
            return [(n, c or "", int(k), int(b or 0), float(u or 0.0)) for n, c, k, b, u in conn.execute(q)]

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
        from glacier_pipelines.catalog.trash import TrashStore

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
