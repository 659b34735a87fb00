"""What the catalog records about one storage request: the request, its batch, object, package, responses and restores.

``glacier-pipelines audit`` tells the story from these rows (flows/audit.py). Every time is UTC;
the pre-signed link is here as stored and is redacted by whoever shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.base import CatalogStore, utc


@dataclass(frozen=True)
class RequestRecord:
    pk: int
    request_id: str
    tenant: str
    status: str
    messages: list[str]
    body: dict[str, Any]
    received_at: datetime | None
    updated_at: datetime | None
    owner: str | None
    session: str | None
    algorithm: str | None
    checksum: str | None
    size: int | None
    width: int | None
    height: int | None
    deduplicated: bool
    run_id: str | None
    batch_id: str | None
    object_id: int | None


@dataclass(frozen=True)
class BatchRecord:
    batch_id: str
    created_at: datetime | None
    run_id: str
    request_count: int


@dataclass(frozen=True)
class ObjectRecord:
    id: int
    bucket: str
    key: str
    storage_class: str
    size: int
    sha256: str
    s3_checksum: str
    stored_at: datetime | None
    run_id: str | None
    batch_id: str | None
    checksums: dict[str, str]  # algorithm -> hex, by algorithm

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class MemberRecord:
    """The request's file as a package member; the package's fields are None if its row is gone."""

    package_id: str
    name: str
    offset: int | None
    length: int | None
    sha256: str
    state: str | None
    closed_at: datetime | None
    manifest_key: str | None
    run_id: str | None
    problems: list[str]


@dataclass(frozen=True)
class ResponseRecord:
    status: str
    created_at: datetime | None
    published_at: datetime | None
    messages: list[str]


@dataclass(frozen=True)
class CopyRecord:
    """The restored copy of the object a restore brought back, as far as the catalog knows it."""

    state: str
    restored_at: datetime | None
    expires_at: datetime | None
    verified: bool | None
    verify_message: str | None


@dataclass(frozen=True)
class RestoreRecord:
    restore_id: str
    requester: str
    tier: str
    days: int
    status: str
    requested_at: datetime | None
    estimated_cost_usd: float | None
    ready_at: datetime | None
    download_url: str | None  # pre-signed: redact before showing anywhere but to the requester
    expires_at: datetime | None
    notified_at: datetime | None
    run_id: str | None
    messages: list[str]
    copy: CopyRecord | None


@dataclass(frozen=True)
class RequestHistory:
    request: RequestRecord
    batch: BatchRecord | None = None
    object: ObjectRecord | None = None
    member: MemberRecord | None = None
    responses: list[ResponseRecord] = field(default_factory=list)
    restores: list[RestoreRecord] = field(default_factory=list)


class AuditQueries(CatalogStore):
    def requests_named(self, request_id: str, tenant: str | None = None) -> list[RequestRecord]:
        """The requests with this id (of ``tenant`` when given): one, none, or one per tenant that used the id."""
        q = sa.select(t.requests).where(t.requests.c.request_id == request_id).order_by(t.requests.c.id)
        if tenant is not None:
            q = q.where(t.requests.c.tenant == tenant)
        with self.reading() as conn:
            return [_request(r) for r in conn.execute(q)]

    def history(self, request: RequestRecord) -> RequestHistory:
        """Everything recorded about ``request``, read together."""
        with self.reading() as conn:
            batch = self._batch(conn, request.batch_id) if request.batch_id else None
            obj = self._object(conn, request.object_id) if request.object_id else None
            member = self._member(conn, request.pk)
            responses = [
                ResponseRecord(x.status, utc(x.created_at), utc(x.published_at), list(x.body.get("messages", [])))
                for x in conn.execute(
                    sa.select(t.responses)
                    .where(t.responses.c.tenant == request.tenant, t.responses.c.request_id == request.request_id)
                    .order_by(t.responses.c.id)
                )
            ]
            restores = self._restores(conn, request, obj.id if obj is not None and member is None else None)
        return RequestHistory(request=request, batch=batch, object=obj, member=member, responses=responses, restores=restores)

    @staticmethod
    def _batch(conn: Any, batch_id: str) -> BatchRecord | None:
        b = conn.execute(sa.select(t.batches).where(t.batches.c.id == batch_id)).first()
        return BatchRecord(b.id, utc(b.created_at), b.run_id, b.request_count) if b is not None else None

    @staticmethod
    def _object(conn: Any, object_id: int) -> ObjectRecord | None:
        o = conn.execute(sa.select(t.objects).where(t.objects.c.id == object_id)).first()
        if o is None:
            return None
        c = t.object_checksums.c
        digests = conn.execute(sa.select(c.algorithm, c.checksum).where(c.object_id == o.id).order_by(c.algorithm)).all()
        return ObjectRecord(
            id=o.id,
            bucket=o.bucket,
            key=o.key,
            storage_class=o.storage_class,
            size=o.size,
            sha256=o.sha256,
            s3_checksum=o.s3_checksum,
            stored_at=utc(o.stored_at),
            run_id=o.run_id,
            batch_id=o.batch_id,
            checksums={a: v for a, v in digests},
        )

    @staticmethod
    def _member(conn: Any, request_pk: int) -> MemberRecord | None:
        pm, p = t.package_members, t.packages
        q = (
            sa.select(
                pm.c.package_id,
                pm.c.name,
                pm.c.offset,
                pm.c.length,
                pm.c.sha256,
                p.c.state,
                p.c.closed_at,
                p.c.manifest_key,
                p.c.run_id,
                p.c.verify_problems,
            )
            .select_from(pm.outerjoin(p, p.c.id == pm.c.package_id))
            .where(pm.c.request_pk == request_pk)
        )
        m = conn.execute(q).first()
        if m is None:
            return None
        return MemberRecord(
            package_id=m.package_id,
            name=m.name,
            offset=m.offset,
            length=m.length,
            sha256=m.sha256,
            state=m.state,
            closed_at=utc(m.closed_at),
            manifest_key=m.manifest_key,
            run_id=m.run_id,
            problems=list(m.verify_problems or []),
        )

    @staticmethod
    def _restores(conn: Any, request: RequestRecord, whole_object: int | None) -> list[RestoreRecord]:
        """Restores of the request's file: those naming it, and when it is a standalone object, any restore of that object."""
        rs, s = t.restores, t.object_restores
        mine = rs.c.request_id == request.request_id
        if whole_object is not None:  # any restore of a standalone object brings this file's bytes back
            mine = sa.or_(mine, rs.c.object_id == whole_object)
        q = (
            sa.select(
                rs,
                s.c.state.label("copy_state"),
                s.c.restored_at,
                s.c.expires_at.label("copy_expires_at"),
                s.c.verified,
                s.c.verify_message,
            )
            .select_from(rs.outerjoin(s, s.c.object_id == rs.c.object_id))
            .where(rs.c.tenant == request.tenant, mine)
            .order_by(rs.c.id)
        )
        return [
            RestoreRecord(
                restore_id=x.restore_id,
                requester=x.requester,
                tier=x.tier,
                days=x.days,
                status=x.status,
                requested_at=utc(x.requested_at),
                estimated_cost_usd=x.estimated_cost_usd,
                ready_at=utc(x.ready_at),
                download_url=x.download_url,
                expires_at=utc(x.expires_at),
                notified_at=utc(x.notified_at),
                run_id=x.run_id,
                messages=list(x.messages or []),
                copy=CopyRecord(x.copy_state, utc(x.restored_at), utc(x.copy_expires_at), x.verified, x.verify_message)
                if x.copy_state
                else None,
            )
            for x in conn.execute(q)
        ]


def _request(r: Any) -> RequestRecord:
    return RequestRecord(
        pk=r.id,
        request_id=r.request_id,
        tenant=r.tenant,
        status=r.status,
        messages=list(r.messages or []),
        body=dict(r.body or {}),
        received_at=utc(r.received_at),
        updated_at=utc(r.updated_at),
        owner=r.owner,
        session=r.session,
        algorithm=r.algorithm,
        checksum=r.checksum,
        size=r.size,
        width=r.width,
        height=r.height,
        deduplicated=bool(r.deduplicated),
        run_id=r.run_id,
        batch_id=r.batch_id,
        object_id=r.object_id,
    )
