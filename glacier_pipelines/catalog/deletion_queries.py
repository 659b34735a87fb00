"""Catalog reads of a deletion request: which storage requests and objects its selector names, what else still refers to
their bytes, and what deleting them early costs. Part of ``WorkerRequestStore`` (worker_requests.py), which records the
deletion itself.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.base import utc
from glacier_pipelines.catalog.rows import StoredObject, _object
from glacier_pipelines.catalog.worker_request_tables import NOT_LIVE, deletions


class DeletionQueries:
    """Part of WorkerRequestStore (worker_requests.py): what a deletion selector names, and what its deletion leaves."""

    if TYPE_CHECKING:  # provided by WorkerRequestStore
        engine: sa.engine.Engine

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
