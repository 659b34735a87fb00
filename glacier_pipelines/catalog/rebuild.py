"""Catalog writes of `catalog rebuild` (flows/rebuild.py): rows recreated from what a bucket holds, never overwriting one that exists.

Each method is one transaction over one bucket object (or one ledger line), so a rebuild stopped
half-way leaves whole objects behind and a second run completes it. The flow reads S3 and parses;
this store only looks rows up and inserts the missing ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.base import CatalogStore


@dataclass(frozen=True)
class HeadFacts:
    """What S3's HEAD of an object says, as an object row records it."""

    storage_class: str
    size: int
    s3_checksum: str
    etag: str


@dataclass(frozen=True)
class RestoreFacts:
    """An object's restore as S3 reports it: in progress, or a restored copy that expires; the days left."""

    ongoing: bool
    expires_at: datetime | None
    days: int


@dataclass(frozen=True)
class FoundObject:
    """A bucket object back in the catalog: its id, and how many restore states were recorded for it (0 or 1)."""

    object_id: int
    restores: int


@dataclass(frozen=True)
class ManifestMember:
    """One member line of a package manifest."""

    tenant: str
    request_id: str
    algorithm: str
    checksum: str
    name: str
    length: int
    sha256: str
    offset: int


@dataclass(frozen=True)
class LedgerAnswer:
    """One request answered SUCCESS as the request ledger recorded it (``member``: its name inside a package, if any)."""

    tenant: str
    request_id: str
    algorithm: str | None
    checksum: str | None
    deduplicated: bool
    size: int | None
    width: int | None
    height: int | None
    member: str | None


class RebuildStore(CatalogStore):
    # ---- objects ------------------------------------------------------------------------------
    def object_id(self, bucket: str, key: str) -> int | None:
        with self.reading() as conn:
            return _object_id(conn, bucket, key)

    def package(
        self,
        bucket: str,
        key: str,
        head: HeadFacts,
        sha256: str,
        restore: RestoreFacts | None,
        package_id: str,
        manifest_key: str,
        members: Sequence[ManifestMember],
        now: datetime,
    ) -> tuple[FoundObject, int]:
        """A package object, its package row and its members' requests; returns the object and how many members were added."""

        def work(conn: Connection) -> tuple[FoundObject, int]:
            tenant = members[0].tenant
            found = _object_with_restore(conn, bucket, key, tenant, head, sha256, restore, now)
            if conn.execute(sa.select(t.packages.c.id).where(t.packages.c.id == package_id)).first() is None:
                conn.execute(
                    t.packages.insert().values(
                        id=package_id,
                        tenant=tenant,
                        state="STORED",
                        created_at=now,
                        closed_at=now,
                        member_bytes=sum(m.length for m in members),
                        object_id=found.object_id,
                        manifest_key=manifest_key,
                        verify_problems=[],
                    )
                )
            added = 0
            for m in members:
                if conn.execute(
                    sa.select(t.requests.c.id).where(t.requests.c.tenant == m.tenant, t.requests.c.request_id == m.request_id)
                ).first():
                    continue
                pk = conn.execute(
                    t.requests.insert().values(
                        tenant=m.tenant,
                        request_id=m.request_id,
                        body=None,
                        received_at=now,
                        updated_at=now,
                        status=t.SUCCESS,
                        messages=[f"rebuilt from {manifest_key}"],
                        algorithm=m.algorithm,
                        checksum=m.checksum,
                        object_id=found.object_id,
                        deduplicated=False,
                        size=m.length,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]  # an INSERT has its key
                conn.execute(
                    t.package_members.insert().values(
                        request_pk=pk,
                        package_id=package_id,
                        tenant=m.tenant,
                        name=m.name,
                        size=m.length,
                        sha256=m.sha256,
                        offset=m.offset,
                        length=m.length,
                    )
                )
                added += 1
            return found, added

        return self.transaction(work)

    def standalone(
        self,
        bucket: str,
        key: str,
        tenant: str,
        head: HeadFacts,
        sha256: str,
        restore: RestoreFacts | None,
        checksums: Iterable[tuple[str | None, str | None]],
        now: datetime,
    ) -> FoundObject:
        """A standalone object with the checksums its metadata carries (an algorithm already recorded is left as it is)."""
        pairs = list(checksums)

        def work(conn: Connection) -> FoundObject:
            found = _object_with_restore(conn, bucket, key, tenant, head, sha256, restore, now)
            c = t.object_checksums
            for algorithm, value in pairs:
                if (
                    algorithm
                    and value
                    and conn.execute(sa.select(c.c.object_id).where(c.c.object_id == found.object_id, c.c.algorithm == algorithm)).first()
                    is None
                ):
                    conn.execute(c.insert().values(object_id=found.object_id, algorithm=algorithm, checksum=value))
            return found

        return self.transaction(work)

    def moved_object(
        self, bucket: str, key: str, tenant: str, head: HeadFacts, sha256: str, restore: RestoreFacts | None, now: datetime
    ) -> FoundObject:
        """The object a move made where the bucket pass did not see it (a move in a source bucket)."""
        return self.transaction(lambda conn: _object_with_restore(conn, bucket, key, tenant, head, sha256, restore, now))

    def add_checksums(self, object_id: int, digests: Mapping[str, str]) -> None:
        """The digests a move recorded, for the algorithms the object has none of yet (lower-cased)."""

        def work(conn: Connection) -> None:
            c = t.object_checksums
            known = {r[0] for r in conn.execute(sa.select(c.c.algorithm).where(c.c.object_id == object_id))}
            for algorithm, value in digests.items():
                if algorithm not in known and value:
                    conn.execute(c.insert().values(object_id=object_id, algorithm=algorithm, checksum=value.lower()))

        self.transaction(work)

    # ---- requests from the ledger ---------------------------------------------------------------
    def mark_deleted(self, tenant: str, request_id: str, now: datetime) -> None:
        """A request deleted on request (flows/deletion.py): never recreated as answered."""
        r = t.requests
        self.transaction(
            lambda conn: conn.execute(
                r.update().where(r.c.tenant == tenant, r.c.request_id == request_id).values(status="DELETED", updated_at=now)
            )
        )

    def ledger_request(self, answer: LedgerAnswer, locations: Sequence[tuple[str, str]], now: datetime) -> bool | None:
        """Recreate (or complete) one answered request on the first of ``locations`` (where it was stored, then where moves took
        it) that the catalog holds: True when created, None when it existed, False when no location holds an object."""

        def work(conn: Connection) -> bool | None:
            object_id = next((oid for oid in (_object_id(conn, b, k) for b, k in locations) if oid is not None), None)
            if object_id is None:
                return False
            r = t.requests
            values = {
                "status": t.SUCCESS,
                "algorithm": answer.algorithm,
                "checksum": answer.checksum,
                "object_id": object_id,
                "deduplicated": answer.deduplicated,
                "size": answer.size,
                "width": answer.width,
                "height": answer.height,
                "updated_at": now,
            }
            existing = conn.execute(
                sa.select(r.c.id, r.c.status).where(r.c.tenant == answer.tenant, r.c.request_id == answer.request_id)
            ).first()
            if existing is not None:
                conn.execute(r.update().where(r.c.id == existing.id).values(**{k: v for k, v in values.items() if v is not None}))
                pk, created = existing.id, False
            else:
                pk = conn.execute(
                    r.insert().values(
                        tenant=answer.tenant,
                        request_id=answer.request_id,
                        body=None,
                        received_at=now,
                        messages=["rebuilt from the request ledger"],
                        **values,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]  # an INSERT has its key
                created = True
            pm, p = t.package_members, t.packages
            if answer.member is not None and conn.execute(sa.select(pm.c.request_pk).where(pm.c.request_pk == pk)).first() is None:
                placed = conn.execute(
                    sa.select(pm).join(p, p.c.id == pm.c.package_id).where(p.c.object_id == object_id, pm.c.name == answer.member).limit(1)
                ).first()
                if placed is not None:
                    conn.execute(
                        pm.insert().values(
                            request_pk=pk,
                            package_id=placed.package_id,
                            tenant=answer.tenant,
                            name=answer.member,
                            size=placed.size,
                            sha256=placed.sha256,
                            offset=placed.offset,
                            length=placed.length,
                        )
                    )
            return True if created else None

        return self.transaction(work)


def _object_id(conn: Connection, bucket: str, key: str) -> int | None:
    return conn.execute(sa.select(t.objects.c.id).where(t.objects.c.bucket == bucket, t.objects.c.key == key)).scalar()


def _object_with_restore(
    conn: Connection, bucket: str, key: str, tenant: str, head: HeadFacts, sha256: str, restore: RestoreFacts | None, now: datetime
) -> FoundObject:
    """The object's row (made when missing, with its SHA-256 checksum row) and its restore state (when S3 reports one)."""
    object_id = _object_id(conn, bucket, key)
    if object_id is None:
        object_id = conn.execute(
            t.objects.insert().values(
                tenant=tenant,
                bucket=bucket,
                key=key,
                storage_class=head.storage_class,
                size=head.size,
                sha256=sha256,
                s3_checksum=head.s3_checksum,
                etag=head.etag,
                stored_at=now,
            )
        ).inserted_primary_key[0]  # type: ignore[index]  # an INSERT has its key
        if sha256:
            conn.execute(t.object_checksums.insert().values(object_id=object_id, algorithm="SHA-256", checksum=sha256))
    restores = 0
    if (
        restore is not None
        and conn.execute(sa.select(t.object_restores.c.object_id).where(t.object_restores.c.object_id == object_id)).first() is None
    ):
        # The tier asked for is not in S3's answer: S3's default tier is recorded.
        conn.execute(
            t.object_restores.insert().values(
                object_id=object_id,
                state="REQUESTED" if restore.ongoing else "RESTORED",
                tier="Standard",
                days=restore.days,
                requested_at=now,
                restored_at=None if restore.ongoing else now,
                expires_at=restore.expires_at,
                next_poll_at=now,
                poll_attempts=0,
            )
        )
        restores = 1
    return FoundObject(object_id, restores)
