"""Catalog side of package compaction (``flows/compaction.py``): which packages are due, the switch to the new package in
one transaction, the old package's removal, and the URL aliases that keep old storedFileUrls answering."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.base import CatalogStore
from glacier_pipelines.catalog.rows import StoredObject, _object
from glacier_pipelines.catalog.worker_requests import NOT_LIVE, WorkerRequestStore, deletions

RESTORING, SWITCHED, DONE, FAILED = "RESTORING", "SWITCHED", "DONE", "FAILED"
COMPACTED = "COMPACTED"  # a package state: its live members live in another package now


def _now() -> datetime:
    return datetime.now(timezone.utc)


class CompactionStore(CatalogStore):
    # ---- what is due -----------------------------------------------------------------------
    def candidates(self, tenant: str) -> list[dict[str, Any]]:
        """The tenant's stored packages with both deleted and live members, every member answered: id, object, manifest key,
        deleted share (by bytes), and the members (request pk, request id, status, name, offset, length, sha256, size...)."""
        p, pm, r = t.packages, t.package_members, t.requests
        q = (
            sa.select(
                p.c.id,
                p.c.object_id,
                p.c.manifest_key,
                pm.c.request_pk,
                pm.c.name,
                pm.c.offset,
                pm.c.length,
                pm.c.sha256,
                pm.c.size,
                r.c.request_id,
                r.c.status,
                r.c.algorithm,
                r.c.checksum,
                r.c.deduplicated,
                r.c.body,
            )
            .join(pm, pm.c.package_id == p.c.id)
            .join(r, r.c.id == pm.c.request_pk)
            .where(p.c.tenant == tenant, p.c.state == "STORED", p.c.object_id.is_not(None), pm.c.offset.is_not(None))
            .order_by(p.c.closed_at, pm.c.request_pk)
        )
        packages: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(q):
                entry = packages.setdefault(
                    row.id, {"id": row.id, "object_id": row.object_id, "manifest_key": row.manifest_key, "members": []}
                )
                entry["members"].append(dict(row._mapping))
            objects = (
                {
                    o.id: _object(o)
                    for o in conn.execute(sa.select(t.objects).where(t.objects.c.id.in_([e["object_id"] for e in packages.values()])))
                }
                if packages
                else {}
            )
        out = []
        for entry in packages.values():
            members = entry["members"]
            if any(m["status"] not in (t.SUCCESS, *NOT_LIVE) for m in members):
                continue  # a member still waits for its answer: not now
            total = sum(m["size"] for m in members)
            gone = sum(m["size"] for m in members if m["status"] in NOT_LIVE)
            live = [m for m in members if m["status"] == t.SUCCESS]
            if not live or not gone or entry["object_id"] not in objects:
                continue  # nothing deleted (nothing to gain), or nothing live (the deletion path removes the package)
            out.append({**entry, "object": objects[entry["object_id"]], "share": gone / total if total else 0.0, "live": live})
        return out

    def get(self, old_package_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.compactions).where(t.compactions.c.old_package_id == old_package_id)).first()
        return dict(row._mapping) if row else None

    def start(self, *, tenant: str, package_id: str, old_url: str, share: float, messages: list[str]) -> dict[str, Any]:
        """The compaction row of this package (created RESTORING the first time)."""

        def tx() -> None:
            with self.engine.begin() as conn:
                c = t.compactions
                if conn.execute(sa.select(c.c.id).where(c.c.old_package_id == package_id)).first() is None:
                    conn.execute(
                        c.insert().values(
                            tenant=tenant,
                            old_package_id=package_id,
                            state=RESTORING,
                            old_url=old_url,
                            deleted_share=share,
                            started_at=_now(),
                            messages=messages,
                        )
                    )

        self.catalog._with_retry(tx)
        return self.get(package_id)  # type: ignore[return-value]

    def update(self, compaction_id: int, add_message: str | None = None, **fields: Any) -> None:
        def tx() -> None:
            with self.engine.begin() as conn:
                c = t.compactions
                if add_message:
                    messages = conn.execute(sa.select(c.c.messages).where(c.c.id == compaction_id)).scalar() or []
                    fields["messages"] = list(messages) + [add_message]
                conn.execute(c.update().where(c.c.id == compaction_id).values(**fields))

        self.catalog._with_retry(tx)

    def switched(self, tenant: str) -> list[dict[str, Any]]:
        """Compactions whose members moved but whose old package still has to leave S3 (a crash in between)."""
        c = t.compactions
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(c).where(c.c.tenant == tenant, c.c.state == SWITCHED))]

    # ---- the switch ------------------------------------------------------------------------
    def switch(
        self,
        *,
        compaction_id: int,
        tenant: str,
        old: dict[str, Any],
        new_package_id: str,
        obj: dict[str, Any],
        manifest_key: str,
        placed: dict[int, tuple[str, int, int]],
        aliases: list[tuple[int, str, str]],
        run_id: str | None,
    ) -> int:
        """In one transaction: the new package and its object, every live member pointed at it (offsets, object, restores in
        flight, trash rows), the aliases old URL -> new URL (earlier aliases onto an old URL follow), the old package COMPACTED.

        ``placed``: request pk -> (name, offset, length) in the new tar; ``aliases``: (request pk, old URL, new URL).
        """

        def tx() -> int:
            with self.engine.begin() as conn:
                now = _now()
                existing = conn.execute(
                    sa.select(t.objects.c.id).where(t.objects.c.bucket == obj["bucket"], t.objects.c.key == obj["key"])
                ).scalar()
                object_id = (
                    existing
                    if existing is not None
                    else conn.execute(  # type: ignore[index]  # an INSERT has its key
                        t.objects.insert().values(stored_at=now, **obj)
                    ).inserted_primary_key[0]
                )
                if existing is None:
                    conn.execute(t.object_checksums.insert().values(object_id=object_id, algorithm="SHA-256", checksum=obj["sha256"]))
                if conn.execute(sa.select(t.packages.c.id).where(t.packages.c.id == new_package_id)).first() is None:
                    conn.execute(
                        t.packages.insert().values(
                            id=new_package_id,
                            tenant=tenant,
                            state="STORED",
                            created_at=now,
                            closed_at=now,
                            object_id=object_id,
                            manifest_key=manifest_key,
                            verify_problems=[],
                            run_id=run_id,
                            member_bytes=sum(length for _, _, length in placed.values()),
                        )
                    )
                old_object = old["object_id"]
                for pk, (name, offset, length) in placed.items():
                    conn.execute(
                        t.package_members.update()
                        .where(t.package_members.c.request_pk == pk)
                        .values(package_id=new_package_id, name=name, offset=offset, length=length)
                    )
                    conn.execute(t.requests.update().where(t.requests.c.id == pk).values(object_id=object_id, updated_at=now))
                    conn.execute(
                        t.trash.update().where(t.trash.c.request_pk == pk, t.trash.c.object_id == old_object).values(object_id=object_id)
                    )
                rs = t.restores
                for row in conn.execute(
                    sa.select(rs.c.id, rs.c.member).where(
                        rs.c.object_id == old_object, rs.c.status.in_(["PENDING", "IN_PROGRESS", "READY"])
                    )
                ):
                    moved = next(((n, o, ln) for n, o, ln in placed.values() if row.member and n == row.member.get("name")), None)
                    if moved is not None:  # a member's restore follows it (a READY one keeps its extracted copy and link)
                        conn.execute(
                            rs.update()
                            .where(rs.c.id == row.id)
                            .values(object_id=object_id, member={**row.member, "name": moved[0], "offset": moved[1], "length": moved[2]})
                        )
                for pk, old_url, new_url in aliases:
                    conn.execute(
                        t.url_aliases.update()
                        .where(t.url_aliases.c.tenant == tenant, t.url_aliases.c.new_url == old_url)
                        .values(new_url=new_url)
                    )
                    conn.execute(
                        t.url_aliases.insert().values(
                            tenant=tenant,
                            old_url=old_url,
                            new_url=new_url,
                            request_pk=pk,
                            reason=f"compaction of package {old['id']}",
                            created_at=now,
                        )
                    )
                conn.execute(t.packages.update().where(t.packages.c.id == old["id"]).values(state=COMPACTED))
                conn.execute(
                    t.compactions.update()
                    .where(t.compactions.c.id == compaction_id)
                    .values(
                        state=SWITCHED,
                        new_package_id=new_package_id,
                        new_url=f"s3://{obj['bucket']}/{obj['key']}",
                        live_members=len(placed),
                        bytes_after=obj["size"],
                    )
                )
                return object_id

        return self.catalog._with_retry(tx)

    def finish(
        self,
        compaction_id: int,
        *,
        tenant: str,
        old_object: StoredObject | None,
        checksums: dict[str, str],
        stored_at: datetime | None,
        charge: float | None,
        message: str,
    ) -> None:
        """After the old package left S3: its deletion recorded (with the early-deletion charge), the object forgotten, DONE."""

        def tx() -> None:
            with self.engine.begin() as conn:
                row = conn.execute(sa.select(t.compactions).where(t.compactions.c.id == compaction_id)).one()
                if old_object is not None and conn.execute(sa.select(t.objects.c.id).where(t.objects.c.id == old_object.id)).first():
                    conn.execute(
                        deletions.insert().values(
                            tenant=tenant,
                            deletion_request_id=f"compaction:{row.old_package_id}",
                            what="OBJECT",
                            url=old_object.url,
                            storage_class=old_object.storage_class,
                            size=old_object.size,
                            sha256=old_object.sha256,
                            checksums=checksums,
                            stored_at=stored_at,
                            deleted_at=_now(),
                            early_deletion_charge_usd=charge,
                        )
                    )
                    WorkerRequestStore._forget_object(conn, old_object.id, f"compaction:{row.old_package_id}")
                    conn.execute(t.packages.update().where(t.packages.c.id == row.old_package_id).values(state=COMPACTED))
                conn.execute(
                    t.compactions.update()
                    .where(t.compactions.c.id == compaction_id)
                    .values(
                        state=DONE,
                        finished_at=_now(),
                        early_deletion_charge_usd=charge,
                        bytes_before=old_object.size if old_object else None,
                        messages=list(row.messages or []) + [message],
                    )
                )

        self.catalog._with_retry(tx)

    def old_package(self, package_id: str) -> tuple[StoredObject | None, str | None]:
        """The object and manifest key of a package (None once its object left the catalog)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.objects, t.packages.c.manifest_key)
                .join(t.packages, t.packages.c.object_id == t.objects.c.id)
                .where(t.packages.c.id == package_id)
            ).first()
        return (_object(row), row.manifest_key) if row else (None, None)

    def object(self, object_id: int) -> StoredObject | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.objects).where(t.objects.c.id == object_id)).first()
        return _object(row) if row else None

    # ---- old URLs --------------------------------------------------------------------------
    def alias(self, tenant: str, url: str) -> str | None:
        """The URL a tenant's old storedFileUrl now names (after a compaction), or None."""
        q = (
            sa.select(t.url_aliases.c.new_url)
            .where(t.url_aliases.c.tenant == tenant, t.url_aliases.c.old_url == url)
            .order_by(t.url_aliases.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    def rows(self, tenant: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(t.compactions).order_by(t.compactions.c.id)
        if tenant is not None:
            q = q.where(t.compactions.c.tenant == tenant)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]
