"""Catalog queries of small-file packaging: open packages, their members, and storing a package."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.base import CatalogStore
from glacier_pipelines.catalog.restores import utc
from glacier_pipelines.catalog.store import RequestRow, _object, answer_stage

OPEN, CLOSING = "OPEN", "CLOSING"  # a package takes members while OPEN; CLOSING: a run is building and storing it


class PackageTakenOver(RuntimeError):
    """The package this run was storing was claimed by another run meanwhile (this run was thought over): nothing recorded."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _find_member_statement(by_sha256: bool) -> sa.Select:
    """Built once per form (see store.py on why): a stored, unflagged member of a tenant with this content."""
    pm, r, o, bad = t.package_members, t.requests, t.objects, t.bad_locations
    flagged = sa.exists().where(bad.c.object_id == o.c.id, sa.or_(bad.c.member == "", bad.c.member == pm.c.name))
    q = (
        sa.select(
            pm.c.name.label("member_name"),
            pm.c.offset.label("member_offset"),
            pm.c.length.label("member_length"),
            pm.c.sha256.label("member_sha256"),
            pm.c.size.label("member_size"),
            o,
        )  # labelled: objects has sha256 and size too
        .join(r, r.c.id == pm.c.request_pk)
        .join(o, o.c.id == r.c.object_id)
        .where(pm.c.tenant == sa.bindparam("tenant"), r.c.status == t.SUCCESS, pm.c.offset.is_not(None), ~flagged)
    )
    if by_sha256:
        q = q.where(pm.c.sha256 == sa.bindparam("sha256"))
    else:
        q = q.where(
            r.c.tenant == sa.bindparam("tenant"), r.c.algorithm == sa.bindparam("algorithm"), r.c.checksum == sa.bindparam("checksum")
        )
    return q.order_by(o.c.id).limit(1)


_FIND_MEMBER = {True: _find_member_statement(True), False: _find_member_statement(False)}
_ADD_MEMBER = t.package_members.insert()
_DELAY_REQUEST = (
    t.requests.update()
    .where(t.requests.c.id == sa.bindparam("b_pk"))
    .values(
        status=t.DELAYED,
        stage=None,
        updated_at=sa.bindparam("b_now"),
        run_id=sa.bindparam("b_run"),
        messages=sa.bindparam("b_messages", type_=t.requests.c.messages.type),
    )
)
_PLACE_MEMBER = (
    t.package_members.update()
    .where(t.package_members.c.request_pk == sa.bindparam("b_pk"))
    .values(name=sa.bindparam("b_name"), offset=sa.bindparam("b_offset"), length=sa.bindparam("b_length"), staged_path=None)
)
# Members stay DELAYED once their package is stored: package_integrity answers them (SUCCESS kept in the stage until then).
_STORE_MEMBER_REQUEST = (
    t.requests.update()
    .where(t.requests.c.id == sa.bindparam("b_pk"))
    .values(
        object_id=sa.bindparam("b_object"),
        updated_at=sa.bindparam("b_now"),
        run_id=sa.bindparam("b_run"),
        stage=sa.bindparam("b_stage", type_=t.requests.c.stage.type),
    )
)

_ANSWER_MEMBER = (
    t.requests.update()
    .where(t.requests.c.id == sa.bindparam("b_pk"), t.requests.c.status == t.DELAYED)
    .values(
        status=sa.bindparam("b_status"),
        stage=None,
        messages=sa.bindparam("b_messages", type_=t.requests.c.messages.type),
        updated_at=sa.bindparam("b_now"),
    )
)


class PackageStore(CatalogStore):
    def add_members(
        self, tenant: str, members: list[tuple[RequestRow, str, str, int, str]], run_id: str, target_size: int | None = None
    ) -> list[str]:
        """Put verified small files into the tenant's open package: requests become DELAYED.

        ``members``: (request row, member name, staged path, size, sha256). Once a package has
        reached ``target_size`` it takes no more members (the close step takes it) and a new one
        is opened, so a package passes its target by less than one member; members with the
        same content stay together, since they share one staged file.
        Returns the ids of the packages that received members.
        """
        groups: dict[str, list[tuple[RequestRow, str, str, int, str]]] = {}
        for member in members:
            groups.setdefault(member[4], []).append(member)

        def tx() -> list[str]:
            with self.engine.begin() as conn:
                now = _now()
                current = conn.execute(
                    sa.select(t.packages.c.id, t.packages.c.member_bytes)
                    .where(t.packages.c.tenant == tenant, t.packages.c.state == OPEN)
                    .order_by(t.packages.c.created_at.desc())
                    .limit(1)
                ).first()
                package_id, filled = (current.id, current.member_bytes) if current is not None else (None, 0)
                added: dict[str, int] = {}
                placed: list[tuple[str, tuple[RequestRow, str, str, int, str]]] = []
                for group in groups.values():
                    size = sum(m[3] for m in group)
                    if package_id is None or (target_size is not None and filled >= target_size):
                        package_id, filled = str(uuid.uuid4()), 0
                        conn.execute(t.packages.insert().values(id=package_id, tenant=tenant, state=OPEN, created_at=now, member_bytes=0))
                    placed.extend((package_id, m) for m in group)
                    filled += size
                    added[package_id] = added.get(package_id, 0) + size
                message = {p: f"durably staged in package {p}; stored when the package closes" for p in added}
                conn.execute(
                    _ADD_MEMBER,
                    [
                        {
                            "request_pk": row.pk,
                            "package_id": p,
                            "tenant": tenant,
                            "name": name,
                            "staged_path": path,
                            "size": size,
                            "sha256": sha256,
                        }
                        for p, (row, name, path, size, sha256) in placed
                    ],
                )
                conn.execute(
                    _DELAY_REQUEST,
                    [{"b_pk": row.pk, "b_now": now, "b_run": run_id, "b_messages": row.messages + [message[p]]} for p, (row, *_) in placed],
                )
                self.catalog._enqueue_responses(conn, [(tenant, row.request_id, t.DELAYED, [message[p]], None) for p, (row, *_) in placed])
                for p, size in added.items():
                    conn.execute(t.packages.update().where(t.packages.c.id == p).values(member_bytes=t.packages.c.member_bytes + size))
                return list(added)

        return self.catalog._with_retry(tx)

    def open_packages(self, tenant: str | None = None, *, closing: bool = False) -> list[dict[str, Any]]:
        """Packages that take members; with ``closing``, also those a run has claimed to close (its claim may be stale)."""
        states = [OPEN, CLOSING] if closing else [OPEN]
        q = sa.select(t.packages).where(t.packages.c.state.in_(states)).order_by(t.packages.c.created_at)
        if tenant is not None:
            q = q.where(t.packages.c.tenant == tenant)
        with self.engine.connect() as conn:
            return [{**dict(r._mapping), "created_at": utc(r.created_at)} for r in conn.execute(q)]

    def claim_for_closing(self, package_id: str, run_id: str, run_finished: Callable[[str], bool]) -> bool:
        """Take a package for ``run_id`` to close: an open one, or one whose closing run is over. False: another run has it.

        Two runs that close packages at once (several runs of a tenant, or the hourly package_job
        beside an archive run) must not build the same package: the second would find its members'
        segments gone with the first's upload and fail requests whose bytes are stored. A claimed
        package takes no new members; ``release_claim`` opens it again when it could not be stored.
        """
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.packages.c.state, t.packages.c.run_id).where(t.packages.c.id == package_id)).first()
        if row is None or row.state not in (OPEN, CLOSING):
            return False
        if row.state == CLOSING and row.run_id != run_id and not run_finished(row.run_id):
            return False
        same_run = t.packages.c.run_id.is_(None) if row.run_id is None else t.packages.c.run_id == row.run_id

        def tx() -> bool:  # compare and set: of two runs reading the same state, one changes it
            with self.engine.begin() as conn:
                claimed = conn.execute(
                    t.packages.update()
                    .where(t.packages.c.id == package_id, t.packages.c.state == row.state, same_run)
                    .values(state=CLOSING, run_id=run_id)
                )
                return bool(claimed.rowcount == 1)

        return bool(self.catalog._with_retry(tx))

    def release_claim(self, package_id: str, run_id: str) -> None:
        """The package could not be stored: open again, with its members, for the next close (or new members)."""

        def tx() -> None:
            with self.engine.begin() as conn:
                conn.execute(
                    t.packages.update()
                    .where(t.packages.c.id == package_id, t.packages.c.state == CLOSING, t.packages.c.run_id == run_id)
                    .values(state=OPEN, run_id=None)
                )

        self.catalog._with_retry(tx)

    def members(self, package_id: str) -> list[dict[str, Any]]:
        q = (
            sa.select(
                t.package_members,
                t.requests.c.request_id,
                t.requests.c.algorithm,
                t.requests.c.checksum,
                t.requests.c.messages,
                t.requests.c.body,
            )
            .join(t.requests, t.requests.c.id == t.package_members.c.request_pk)
            .where(t.package_members.c.package_id == package_id)
            .order_by(t.package_members.c.request_pk)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def drop_member(self, request_pk: int, status: str, message: str) -> None:
        """A member that cannot be packed leaves the package and ends with ``status``."""

        def tx() -> None:
            with self.engine.begin() as conn:
                row = conn.execute(
                    sa.select(t.package_members.c.package_id, t.package_members.c.size).where(t.package_members.c.request_pk == request_pk)
                ).one()
                conn.execute(t.package_members.delete().where(t.package_members.c.request_pk == request_pk))
                conn.execute(
                    t.packages.update().where(t.packages.c.id == row.package_id).values(member_bytes=t.packages.c.member_bytes - row.size)
                )

        self.catalog._with_retry(tx)
        self.catalog.fail(request_pk, status, [message])

    def mark_stored(
        self,
        package_id: str,
        obj: dict[str, Any],
        packed: dict[int, tuple[str, int, int]],
        contents: dict[int, dict[str, Any]],
        manifest_key: str,
        problems: list[str],
        run_id: str,
    ) -> int:
        """Record the package object and each member's offset and length, in one transaction, if ``run_id`` still holds
        the package's claim (``PackageTakenOver`` otherwise).

        The members stay DELAYED, each keeping its SUCCESS content until package_integrity has read
        the stored package back (``answer_package``). ``packed``: request pk -> (name in the tar,
        offset, length); ``contents``: request pk -> response content.
        """

        def tx() -> int:
            with self.engine.begin() as conn:
                existing = conn.execute(
                    sa.select(t.objects.c.id).where(t.objects.c.bucket == obj["bucket"], t.objects.c.key == obj["key"])
                ).scalar()
                object_id = (
                    existing
                    if existing is not None
                    else conn.execute(  # type: ignore[index]  # an INSERT has its key
                        t.objects.insert().values(stored_at=_now(), **obj)
                    ).inserted_primary_key[0]
                )
                if existing is None:
                    conn.execute(t.object_checksums.insert().values(object_id=object_id, algorithm="SHA-256", checksum=obj["sha256"]))
                now = _now()
                if packed:
                    conn.execute(
                        _PLACE_MEMBER,
                        [
                            {"b_pk": pk, "b_name": name, "b_offset": offset, "b_length": length}
                            for pk, (name, offset, length) in packed.items()
                        ],
                    )
                    conn.execute(
                        _STORE_MEMBER_REQUEST,
                        [
                            {"b_pk": pk, "b_object": object_id, "b_now": now, "b_run": run_id, "b_stage": answer_stage(contents[pk])}
                            for pk in packed
                        ],
                    )
                claim = conn.execute(
                    t.packages.update()
                    .where(t.packages.c.id == package_id, t.packages.c.state == CLOSING, t.packages.c.run_id == run_id)
                    .values(
                        state="STORED",
                        closed_at=_now(),
                        object_id=object_id,
                        manifest_key=manifest_key,
                        verify_problems=problems,
                        run_id=run_id,
                    )
                )
                if claim.rowcount != 1:  # rolls the whole record back: the run that holds the package now records it
                    raise PackageTakenOver(f"package {package_id} is no longer claimed by run {run_id}")
                return object_id

        return self.catalog._with_retry(tx)

    def find_member(
        self, tenant: str, sha256: str | None = None, algorithm: str | None = None, checksum: str | None = None
    ) -> dict[str, Any] | None:
        """A stored member of ``tenant`` with this content: by SHA-256, or by the checksum a request announced."""
        params = (
            {"tenant": tenant, "sha256": sha256} if sha256 is not None else {"tenant": tenant, "algorithm": algorithm, "checksum": checksum}
        )
        with self.engine.connect() as conn:
            row = conn.execute(_FIND_MEMBER[sha256 is not None], params).first()
        if row is None:
            return None
        return {
            "name": row.member_name,
            "offset": row.member_offset,
            "length": row.member_length,
            "sha256": row.member_sha256,
            "size": row.member_size,
            "object": _object(row),
        }

    def link_member(self, row: RequestRow, member: dict[str, Any], content: dict[str, Any], run_id: str) -> None:
        """Answer a request with content already stored as a member: a second location record, no new bytes."""

        def tx() -> None:
            with self.engine.begin() as conn:
                conn.execute(
                    t.package_members.insert().values(
                        request_pk=row.pk,
                        package_id=conn.execute(sa.select(t.packages.c.id).where(t.packages.c.object_id == member["object"].id)).scalar(),
                        tenant=row.tenant,
                        name=member["name"],
                        size=member["size"],
                        sha256=member["sha256"],
                        offset=member["offset"],
                        length=member["length"],
                    )
                )
                conn.execute(
                    t.requests.update()
                    .where(t.requests.c.id == row.pk)
                    .values(  # answered by checksum_integrity
                        status=t.STORED,
                        object_id=member["object"].id,
                        deduplicated=True,
                        size=member["size"],
                        stage=answer_stage(content),
                        updated_at=_now(),
                        run_id=run_id,
                        messages=row.messages,
                    )
                )

        self.catalog._with_retry(tx)

    def awaiting_check(self, tenant: str | None) -> list[dict[str, Any]]:
        """Stored packages of ``tenant`` (None: every tenant) whose members wait for package_integrity: package, object, members."""
        p, pm, r = t.packages, t.package_members, t.requests
        q = (
            sa.select(
                p.c.id,
                p.c.tenant,
                p.c.manifest_key,
                p.c.verify_problems,
                p.c.run_id,
                pm.c.request_pk,
                pm.c.name,
                pm.c.offset,
                pm.c.length,
                pm.c.sha256,
                pm.c.size,
                r.c.request_id,
                r.c.stage,
                r.c.deduplicated,
            )
            .join(pm, pm.c.package_id == p.c.id)
            .join(r, r.c.id == pm.c.request_pk)
            .where(p.c.state == "STORED", pm.c.offset.is_not(None), r.c.status == t.DELAYED)
            .order_by(p.c.closed_at, pm.c.request_pk)
        )
        if tenant is not None:
            q = q.where(p.c.tenant == tenant)
        packages: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(q):
                entry = packages.setdefault(
                    row.id,
                    {
                        "id": row.id,
                        "tenant": row.tenant,
                        "manifest_key": row.manifest_key,
                        "run_id": row.run_id,
                        "build_problems": list(row.verify_problems or []),
                        "members": [],
                    },
                )
                entry["members"].append(
                    {
                        "request_pk": row.request_pk,
                        "request_id": row.request_id,
                        "name": row.name,
                        "offset": row.offset,
                        "length": row.length,
                        "sha256": row.sha256,
                        "size": row.size,
                        "content": (row.stage or {}).get("content"),
                        "deduplicated": bool(row.deduplicated),
                    }
                )
            if packages:
                object_ids = dict(conn.execute(sa.select(p.c.id, p.c.object_id).where(p.c.id.in_(list(packages)))).all())
                objects = {
                    x.id: _object(x) for x in conn.execute(sa.select(t.objects).where(t.objects.c.id.in_(list(object_ids.values()))))
                }
                for package_id, object_id in object_ids.items():
                    packages[package_id]["object"] = objects[object_id]
        return list(packages.values())

    def answer_package(
        self, package_id: str, problems: list[str], contents: dict[int, dict[str, Any] | None] | None = None
    ) -> dict[str, int]:
        """Answer the waiting members of a checked package: SUCCESS when the check found nothing, else ERROR (package flagged).

        ``contents``: request pk -> the SUCCESS content ``awaiting_check`` already read from each member's
        stage, so that the stages are not decoded a second time; a member missing from it is read here.
        """

        def tx() -> dict[str, int]:
            counts = {t.SUCCESS: 0, t.ERROR: 0}
            with self.engine.begin() as conn:
                package = conn.execute(sa.select(t.packages.c.object_id).where(t.packages.c.id == package_id)).one()
                r = t.requests.c
                rows = conn.execute(
                    sa.select(r.id, r.tenant, r.request_id, r.messages)  # not the bodies: nothing here reads them
                    .join(t.package_members, t.package_members.c.request_pk == t.requests.c.id)
                    .where(t.package_members.c.package_id == package_id, t.requests.c.status == t.DELAYED)
                ).all()
                content = dict(contents or {})
                missing = [row.id for row in rows if row.id not in content]
                for start in range(0, len(missing), 500):
                    chosen = sa.select(r.id, r.stage).where(r.id.in_(missing[start : start + 500]))
                    content.update((pk, (stage or {}).get("content")) for pk, stage in conn.execute(chosen))
                reason = "package_integrity failed: " + "; ".join(problems) if problems else ""
                if problems:
                    self.catalog._flag(conn, package.object_id, reason)
                    conn.execute(t.packages.update().where(t.packages.c.id == package_id).values(state="FAILED", verify_problems=problems))
                status = t.ERROR if problems else t.SUCCESS
                answers = [(row, list(row.messages or []) + ([reason] if problems else [])) for row in rows]
                if answers:  # one statement and one outbox insert for the package, not one per member
                    conn.execute(
                        _ANSWER_MEMBER,
                        [{"b_pk": row.id, "b_status": status, "b_messages": messages, "b_now": _now()} for row, messages in answers],
                    )
                    self.catalog._enqueue_responses(
                        conn,
                        [
                            (row.tenant, row.request_id, status, messages, None if problems else content[row.id])
                            for row, messages in answers
                        ],
                    )
                counts[status] += len(answers)
            return counts

        return self.catalog._with_retry(tx)

    def package_problems(self, run_id: str) -> list[tuple[str, list[str], int]]:
        """(package object URL, problems, members) for packages stored by ``run_id``."""
        members = sa.select(t.package_members.c.package_id, sa.func.count().label("n")).group_by(t.package_members.c.package_id).subquery()
        q = (
            sa.select(t.packages.c.verify_problems, t.objects.c.bucket, t.objects.c.key, members.c.n)
            .join(t.objects, t.objects.c.id == t.packages.c.object_id)
            .join(members, members.c.package_id == t.packages.c.id)
            .where(t.packages.c.run_id == run_id)
        )  # no GROUP BY over the JSON column: PostgreSQL cannot compare json
        with self.engine.connect() as conn:
            return [(f"s3://{b}/{k}", list(p or []), n) for p, b, k, n in conn.execute(q)]
