"""The few catalog queries the pipeline needs, each in its own short transaction."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.core import responses
from glacier_pipelines.core.packaging import member_url
from glacier_pipelines.core.requests import ParsedRequest, StorageRequest


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class RequestRow:
    pk: int
    tenant: str
    request_id: str
    status: str
    messages: list[str]
    body: dict[str, Any] | None
    batch_id: str | None
    object_id: int | None
    deduplicated: bool
    size: int | None
    width: int | None
    height: int | None
    stage: dict[str, Any] | None
    algorithm: str | None
    checksum: str | None

    @functools.cached_property
    def request(self) -> StorageRequest:
        """The stored body as a request, validated once per row (it is read several times per file)."""
        return StorageRequest.model_validate(self.body)


@dataclass
class StoredObject:
    id: int
    tenant: str
    bucket: str
    key: str
    storage_class: str
    size: int
    sha256: str
    s3_checksum: str
    etag: str | None
    width: int | None
    height: int | None
    run_id: str | None
    batch_id: str | None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def answer_stage(content: dict[str, Any] | None) -> dict[str, Any]:
    """What a STORED (or stored DELAYED) request keeps until its check answers: the SUCCESS response's content."""
    return {"kind": "answer", "content": content}


def _request_row(row: Any) -> RequestRow:
    m = row._mapping
    return RequestRow(
        pk=m["id"], tenant=m["tenant"], request_id=m["request_id"], status=m["status"], messages=list(m["messages"] or []),
        body=m["body"], batch_id=m["batch_id"], object_id=m["object_id"], deduplicated=bool(m["deduplicated"]),
        size=m["size"], width=m["width"], height=m["height"], stage=m["stage"], algorithm=m["algorithm"], checksum=m["checksum"],
    )


def _object(row: Any) -> StoredObject:
    m = row._mapping
    return StoredObject(**{f: m[f] for f in StoredObject.__dataclass_fields__})


# Statements run once per file are built once: SQLAlchemy caches the compiled form of a
# statement object, so rebuilding the expression on every call was most of a small file's cost.
_WHOLE_OBJECT_FLAGGED = sa.exists().where(t.bad_locations.c.object_id == t.objects.c.id, t.bad_locations.c.member == "")
_FIND_OBJECT = (
    sa.select(t.objects)
    .join(t.object_checksums, t.object_checksums.c.object_id == t.objects.c.id)
    .where(t.objects.c.tenant == sa.bindparam("tenant"), t.object_checksums.c.algorithm == sa.bindparam("algorithm"),
           t.object_checksums.c.checksum == sa.bindparam("checksum"), ~_WHOLE_OBJECT_FLAGGED)
    .order_by(t.objects.c.id)
    .limit(1)
)
_RESPONSE_EXISTS = {
    kind: sa.select(t.responses.c.id).where(t.responses.c.tenant == sa.bindparam("tenant"),
                                            t.responses.c.request_id == sa.bindparam("request_id"),
                                            t.responses.c.status.in_(statuses)).limit(1)
    for kind, statuses in (("delayed", (t.DELAYED,)), ("terminal", t.TERMINAL))
}
_MARK_VERIFIED = t.requests.update().where(t.requests.c.id == sa.bindparam("b_pk")).values(
    status=t.VERIFIED, size=sa.bindparam("b_size"), width=sa.bindparam("b_width"), height=sa.bindparam("b_height"),
    stage=sa.bindparam("b_stage", type_=t.requests.c.stage.type), messages=sa.bindparam("b_messages", type_=t.requests.c.messages.type),
    updated_at=sa.bindparam("b_now"),
)


# A stored package whose members still wait for package_integrity's verdict (answered DELAYED so far).
_PACKAGE_AWAITS_CHECK = sa.exists().where(
    t.package_members.c.package_id == t.packages.c.id, t.package_members.c.offset.is_not(None),
    t.requests.c.id == t.package_members.c.request_pk, t.requests.c.status == t.DELAYED)


class Catalog:
    """Records requests, batches, stored objects and the response outbox.

    SQLite (the default) runs in WAL mode with a busy timeout so a sensor and a run can
    share it; PostgreSQL is used as is. Writes retry briefly when the database is locked.
    """

    def __init__(self, url: str, *, create: bool = True):
        self.url = url
        kwargs: dict[str, Any] = {"future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True  # a database restart or failover leaves dead connections in the pool
        self.engine = sa.create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", self._sqlite_pragmas)
        else:
            sa.event.listen(self.engine, "do_connect", self._connect_patiently)
        if create:
            self._with_retry(self._create_schema)

    def _create_schema(self) -> None:
        """Create missing tables, and missing indexes of tables that already exist.

        ``create_all`` skips a table that exists, indexes included, so a catalog made by an
        earlier version would never get an index added since (``ix_requests_content`` serves
        dedupe lookups). New columns still need a migration: there is none yet.
        """
        t.metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            existing = sa.inspect(conn)
            for table in t.metadata.sorted_tables:
                have = {ix["name"] for ix in existing.get_indexes(table.name)}
                for index in table.indexes:
                    if index.name not in have:
                        index.create(conn)

    @staticmethod
    def _connect_patiently(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        """Open a server connection, waiting out a database that refuses them for a moment (about 5 s in all)."""
        for attempt in range(6):
            try:
                return dialect.loaded_dbapi.connect(*cargs, **cparams)
            except dialect.loaded_dbapi.OperationalError:
                if attempt == 5:
                    raise
                time.sleep(min(0.2 * 2**attempt, 2.0))
        return None

    @staticmethod
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    def dispose(self) -> None:
        self.engine.dispose()

    @staticmethod
    def _with_retry(fn: Any, attempts: int = 5) -> Any:
        """Retry a transaction when the database is locked or briefly unreachable."""
        for attempt in range(attempts):
            try:
                return fn()
            except OperationalError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.2 * 2**attempt)
        return None

    # ---- intake -------------------------------------------------------------------------

    def record_request(self, parsed: ParsedRequest, *, fallback_id: str) -> str:
        """Persist one received message idempotently; returns 'new', 'duplicate' or 'invalid'."""
        return self.record_requests([(parsed, fallback_id)])[0]

    def record_requests(self, items: Sequence[tuple[ParsedRequest, str]]) -> list[str]:
        """Persist received messages in one transaction; for each, 'new', 'retried', 'duplicate' or 'invalid'.

        A request already known by ``(tenant, requestId)`` is a duplicate (redelivery or resend)
        and changes nothing, unless its last answer was ERROR or INVALID_CONTENT and the resend is
        valid: then it is attempted again ('retried') and answered again. An invalid message is
        recorded as terminal ``INVALID_CONTENT`` with its response in the outbox; one without a
        usable tenant or request id is filed under its ``fallback_id``.
        """
        now = _now()
        rows = []
        for parsed, fallback_id in items:
            tenant = parsed.envelope.tenant if parsed.envelope else (parsed.tenant or "")
            request_id = parsed.envelope.requestId if parsed.envelope else (parsed.request_id or fallback_id)
            rows.append({
                "tenant": tenant[:64], "request_id": request_id[:255], "owner": parsed.owner, "session": parsed.session,
                "body": parsed.request.model_dump() if parsed.request else parsed.body,
                "received_at": now, "updated_at": now, "status": t.PENDING if parsed.valid else t.INVALID_CONTENT,
                "messages": parsed.errors, "algorithm": parsed.request.algorithm if parsed.request else None,
                "checksum": parsed.request.checksum if parsed.request else None, "deduplicated": False,
            })
        insert = self._insert_ignoring_duplicates(t.requests, ["tenant", "request_id"])

        def tx() -> list[str]:
            outcomes = []
            with self.engine.begin() as conn:
                for (parsed, _), row in zip(items, rows):
                    if conn.execute(insert, row).rowcount == 0:
                        outcomes.append("retried" if parsed.valid and self._attempt_again(conn, row) else "duplicate")
                    elif parsed.valid:
                        outcomes.append("new")
                    else:
                        self._enqueue_response(conn, row["tenant"], row["request_id"], t.INVALID_CONTENT, parsed.errors, None)
                        outcomes.append("invalid")
            return outcomes

        return self._with_retry(tx)

    @staticmethod
    def _attempt_again(conn: Any, row: dict[str, Any]) -> bool:
        """A valid resend of a request whose last answer was ERROR or INVALID_CONTENT: back to PENDING, to be answered again.

        Its earlier responses stay in the outbox (published or about to be) under a numbered
        status (``ERROR-1``...), so that exactly one current answer per status is kept.
        """
        r, out = t.requests, t.responses
        known = conn.execute(sa.select(r.c.id, r.c.status, r.c.messages).where(
            r.c.tenant == row["tenant"], r.c.request_id == row["request_id"])).first()
        if known is None or known.status not in (t.ERROR, t.INVALID_CONTENT):
            return False
        mine = sa.and_(out.c.tenant == row["tenant"], out.c.request_id == row["request_id"])
        attempt = 1 + conn.execute(sa.select(sa.func.count()).where(mine, out.c.status.like("%-%"))).scalar()
        for status in (t.DELAYED, *t.TERMINAL):
            conn.execute(out.update().where(mine, out.c.status == status).values(status=f"{status}-{attempt}"))
        conn.execute(t.package_members.delete().where(t.package_members.c.request_pk == known.id))  # a failed package's member row
        previous = "; ".join(known.messages or [])[:500]
        conn.execute(r.update().where(r.c.id == known.id).values(
            status=t.PENDING, body=row["body"], algorithm=row["algorithm"], checksum=row["checksum"], owner=row["owner"],
            session=row["session"], updated_at=row["updated_at"], batch_id=None, object_id=None, stage=None, deduplicated=False,
            size=None, width=None, height=None, run_id=None,
            messages=[f"sent again after its answer {known.status} ({previous}): attempt {attempt + 1}"]))
        return True

    def _insert_ignoring_duplicates(self, table: sa.Table, keys: list[str]) -> Any:
        """INSERT ... ON CONFLICT DO NOTHING in the dialect at hand (rowcount 0 means it existed)."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif self.engine.dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            raise NotImplementedError(f"catalog on {self.engine.dialect.name} is not supported; use SQLite or PostgreSQL")
        return insert(table).on_conflict_do_nothing(index_elements=keys)

    def tenants_with_work(self) -> list[str]:
        """Tenants with requests not yet terminal (pending, claimed or verified)."""
        q = sa.select(t.requests.c.tenant).where(t.requests.c.status.in_(t.IN_FLIGHT)).distinct()
        waiting_packages = sa.select(t.packages.c.tenant).where(t.packages.c.state == "STORED", _PACKAGE_AWAITS_CHECK).distinct()
        with self.engine.connect() as conn:
            return sorted({r[0] for r in conn.execute(q)} | {r[0] for r in conn.execute(waiting_packages)})

    def status_counts(self, tenant: str | None = None) -> dict[str, int]:
        q = sa.select(t.requests.c.status, sa.func.count()).group_by(t.requests.c.status)
        if tenant is not None:
            q = q.where(t.requests.c.tenant == tenant)
        with self.engine.connect() as conn:
            return {status: n for status, n in conn.execute(q)}

    def pending_marker(self, tenant: str) -> str | None:
        """``"<oldest>-<newest>"`` pending row ids: a run key that changes when a run claims work or new work arrives."""
        q = sa.select(sa.func.min(t.requests.c.id), sa.func.max(t.requests.c.id)).where(
            t.requests.c.tenant == tenant, t.requests.c.status == t.PENDING
        )
        with self.engine.connect() as conn:
            low, high = conn.execute(q).one()
        return None if low is None else f"{low}-{high}"

    # ---- batches ------------------------------------------------------------------------

    def batch_runs_in_flight(self, tenant: str) -> dict[str, str]:
        """batch id -> run id for batches of ``tenant`` that still hold unfinished requests."""
        q = (
            sa.select(t.batches.c.id, t.batches.c.run_id)
            .join(t.requests, t.requests.c.batch_id == t.batches.c.id)
            .where(t.batches.c.tenant == tenant, t.requests.c.status.in_((t.CLAIMED, t.VERIFIED, t.STORED)))
            .distinct()
        )
        with self.engine.connect() as conn:
            return {r[0]: r[1] for r in conn.execute(q)}

    def claim_batch(self, tenant: str, run_id: str, limit: int, adopt_batches: Iterable[str] = ()) -> tuple[str, int]:
        """Move up to ``limit`` pending requests (plus unfinished ones of abandoned batches) into a new batch."""
        adopt = list(adopt_batches)
        batch_id = str(uuid.uuid4())

        def tx() -> int:
            with self.engine.begin() as conn:
                conn.execute(t.batches.insert().values(id=batch_id, tenant=tenant, run_id=run_id, created_at=_now(), request_count=0))
                ids = [
                    r[0]
                    for r in conn.execute(
                        sa.select(t.requests.c.id)
                        .where(t.requests.c.tenant == tenant, t.requests.c.status == t.PENDING)
                        .order_by(t.requests.c.id)
                        .limit(limit)
                    )
                ]
                claimed = 0
                if ids:
                    claimed += conn.execute(
                        t.requests.update()
                        .where(t.requests.c.id.in_(ids), t.requests.c.status == t.PENDING)
                        .values(status=t.CLAIMED, batch_id=batch_id, updated_at=_now(), run_id=run_id)
                    ).rowcount
                if adopt:
                    claimed += conn.execute(
                        t.requests.update()
                        .where(
                            t.requests.c.tenant == tenant,
                            t.requests.c.batch_id.in_(adopt),
                            t.requests.c.status.in_((t.CLAIMED, t.VERIFIED)),
                        )
                        .values(batch_id=batch_id, updated_at=_now(), run_id=run_id)
                    ).rowcount
                conn.execute(t.batches.update().where(t.batches.c.id == batch_id).values(request_count=claimed))
                return claimed

        return batch_id, self._with_retry(tx)

    def batch_for_run(self, run_id: str) -> str | None:
        q = sa.select(t.batches.c.id).where(t.batches.c.run_id == run_id).order_by(t.batches.c.created_at.desc()).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    def batch_requests(self, batch_id: str, statuses: Sequence[str] | None = None) -> list[RequestRow]:
        q = sa.select(t.requests).where(t.requests.c.batch_id == batch_id).order_by(t.requests.c.id)
        if statuses:
            q = q.where(t.requests.c.status.in_(statuses))
        with self.engine.connect() as conn:
            return [_request_row(r) for r in conn.execute(q)]

    def get_request(self, tenant: str, request_id: str) -> RequestRow | None:
        q = sa.select(t.requests).where(t.requests.c.tenant == tenant, t.requests.c.request_id == request_id)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return _request_row(row) if row else None

    # ---- verification and storage --------------------------------------------------------

    def mark_verified(self, pk: int, *, size: int | None, width: int | None, height: int | None,
                      stage: dict[str, Any], messages: list[str]) -> None:
        self.mark_verified_many([{"pk": pk, "size": size, "width": width, "height": height, "stage": stage, "messages": messages}])

    def mark_verified_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Mark requests VERIFIED with where their bytes wait, all in one transaction (keys as mark_verified's)."""
        if not rows:
            return
        now = _now()
        params = [{f"b_{k}": r[k] for k in ("pk", "size", "width", "height", "stage", "messages")} | {"b_now": now} for r in rows]

        def tx() -> None:
            with self.engine.begin() as conn:
                conn.execute(_MARK_VERIFIED, params)

        self._with_retry(tx)

    def fail(self, pk: int, status: str, messages: list[str]) -> None:
        """Terminal failure of one request, with its response queued in the same transaction."""
        def tx() -> None:
            with self.engine.begin() as conn:
                row = conn.execute(sa.select(t.requests.c.tenant, t.requests.c.request_id).where(t.requests.c.id == pk)).one()
                conn.execute(
                    t.requests.update().where(t.requests.c.id == pk).values(status=status, messages=messages, stage=None, updated_at=_now())
                )
                self._enqueue_response(conn, row.tenant, row.request_id, status, messages, None)

        self._with_retry(tx)

    def find_object(self, tenant: str, algorithm: str, checksum: str) -> StoredObject | None:
        """A stored object of ``tenant`` whose content has this digest (content-addressed dedupe); flagged ones are skipped."""
        with self.engine.connect() as conn:
            row = conn.execute(_FIND_OBJECT, {"tenant": tenant, "algorithm": algorithm, "checksum": checksum.lower()}).first()
        return _object(row) if row else None

    def known_checksums(self, tenant: str, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which (algorithm, checksum) pairs may already be stored for ``tenant`` (a superset; no false negatives).

        One query per 500 instead of two lookups per request: most requests of a batch are new content.
        """
        wanted = {(a, c.lower()) for a, c in pairs}
        found: set[tuple[str, str]] = set()
        values = sorted({c for _, c in wanted})
        with self.engine.connect() as conn:
            for start in range(0, len(values), 500):
                chunk = values[start:start + 500]
                found |= set(tuple(r) for r in conn.execute(
                    sa.select(t.object_checksums.c.algorithm, t.object_checksums.c.checksum)
                    .join(t.objects, t.objects.c.id == t.object_checksums.c.object_id)
                    .where(t.objects.c.tenant == tenant, t.object_checksums.c.checksum.in_(chunk))))
                found |= set(tuple(r) for r in conn.execute(
                    sa.select(t.requests.c.algorithm, t.requests.c.checksum)
                    .where(t.requests.c.tenant == tenant, t.requests.c.status == t.SUCCESS, t.requests.c.checksum.in_(chunk))))
        return wanted & {(a, (c or "").lower()) for a, c in found}

    def known_sha256s(self, tenant: str, sha256s: Iterable[str]) -> set[str]:
        """Which of these SHA-256 digests an object or package member of ``tenant`` may hold (a superset)."""
        wanted, found = sorted(set(sha256s)), set()
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                found |= set(conn.execute(
                    sa.select(t.object_checksums.c.checksum).join(t.objects, t.objects.c.id == t.object_checksums.c.object_id)
                    .where(t.objects.c.tenant == tenant, t.object_checksums.c.algorithm == "SHA-256",
                           t.object_checksums.c.checksum.in_(chunk))).scalars())
                found |= set(conn.execute(
                    sa.select(t.package_members.c.sha256).where(t.package_members.c.tenant == tenant,
                                                                t.package_members.c.sha256.in_(chunk))).scalars())
        return found

    def flag_location(self, object_id: int, reason: str, member: str = "") -> None:
        """Remember that an object (or one member of a package) was missing or corrupt when read."""
        def tx() -> None:
            with self.engine.begin() as conn:
                self._flag(conn, object_id, reason, member)

        self._with_retry(tx)

    @staticmethod
    def _flag(conn: Any, object_id: int, reason: str, member: str = "") -> None:
        known = conn.execute(sa.select(t.bad_locations.c.object_id).where(
            t.bad_locations.c.object_id == object_id, t.bad_locations.c.member == member)).first()
        if known is None:
            conn.execute(t.bad_locations.insert().values(object_id=object_id, member=member, reason=reason[:2000], flagged_at=_now()))

    def location_flagged(self, object_id: int, member: str = "") -> bool:
        """Whether the object, or this member of it, was flagged missing or corrupt."""
        q = sa.select(t.bad_locations.c.object_id).where(t.bad_locations.c.object_id == object_id,
                                                         t.bad_locations.c.member.in_(["", member]))
        with self.engine.connect() as conn:
            return conn.execute(q).first() is not None

    def flagged_locations(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """Every flagged location (for reports and audits)."""
        q = (sa.select(t.bad_locations, t.objects.c.tenant, t.objects.c.bucket, t.objects.c.key)
             .join(t.objects, t.objects.c.id == t.bad_locations.c.object_id).order_by(t.bad_locations.c.flagged_at))
        if tenant is not None:
            q = q.where(t.objects.c.tenant == tenant)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def store(self, obj: dict[str, Any], checksums: dict[str, str], succeeded: list[tuple[RequestRow, bool, dict[str, Any]]],
              run_id: str, rewritten: bool = False) -> int:
        """Record a stored object and its requests (``(row, deduplicated, response content)``) in one transaction.

        The requests become STORED: their SUCCESS (kept with them) is queued only when the blocking
        check that reads the object back passes (``answer_checked``).
        """
        def tx() -> int:
            with self.engine.begin() as conn:
                existing = conn.execute(
                    sa.select(t.objects.c.id).where(t.objects.c.bucket == obj["bucket"], t.objects.c.key == obj["key"])
                ).scalar()
                if existing is None:
                    object_id = conn.execute(t.objects.insert().values(stored_at=_now(), **obj)).inserted_primary_key[0]
                else:
                    object_id = existing
                    if rewritten:  # the bytes were uploaded again at the same key: the location is sound again
                        conn.execute(t.objects.update().where(t.objects.c.id == object_id).values(
                            s3_checksum=obj["s3_checksum"], etag=obj["etag"], stored_at=_now()))
                        conn.execute(t.bad_locations.delete().where(t.bad_locations.c.object_id == object_id))
                known = {
                    r[0] for r in conn.execute(sa.select(t.object_checksums.c.algorithm).where(t.object_checksums.c.object_id == object_id))
                }
                for algorithm, value in checksums.items():
                    if algorithm not in known:
                        conn.execute(t.object_checksums.insert().values(object_id=object_id, algorithm=algorithm, checksum=value.lower()))
                for row, deduplicated, content in succeeded:
                    conn.execute(
                        t.requests.update().where(t.requests.c.id == row.pk).values(
                            status=t.STORED, object_id=object_id, deduplicated=deduplicated, stage=answer_stage(content),
                            size=obj["size"], width=row.width, height=row.height, updated_at=_now(), run_id=run_id,
                            messages=row.messages,
                        )
                    )
                return object_id

        return self._with_retry(tx)

    def awaiting_check(self, tenant: str | None) -> list[tuple[StoredObject, list[RequestRow]]]:
        """STORED requests of ``tenant`` (None: every tenant) grouped by the object they point at: what checksum_integrity reads back."""
        q = sa.select(t.requests).where(t.requests.c.status == t.STORED).order_by(t.requests.c.object_id, t.requests.c.id)
        if tenant is not None:
            q = q.where(t.requests.c.tenant == tenant)
        with self.engine.connect() as conn:
            rows = [_request_row(r) for r in conn.execute(q)]
            ids = sorted({r.object_id for r in rows if r.object_id is not None})
            objects = {o.id: o for o in (_object(x) for x in conn.execute(sa.select(t.objects).where(t.objects.c.id.in_(ids))))} if ids else {}
        grouped: dict[int, list[RequestRow]] = {}
        for row in rows:
            grouped.setdefault(row.object_id or 0, []).append(row)
        return [(objects[oid], group) for oid, group in grouped.items() if oid in objects]

    def answer_checked(self, verdicts: dict[int, list[str]], check: str) -> dict[str, int]:
        """Answer the STORED requests of checked objects: SUCCESS when the object's check found no problem, else ERROR.

        A failed object is flagged (never offered again for deduplication or restore) and its
        requests end ERROR with the check's reason, in the same transaction as their responses.
        Returns how many requests were answered each way.
        """
        def tx() -> dict[str, int]:
            counts = {t.SUCCESS: 0, t.ERROR: 0}
            with self.engine.begin() as conn:
                for object_id, problems in verdicts.items():
                    rows = [_request_row(r) for r in conn.execute(sa.select(t.requests).where(
                        t.requests.c.object_id == object_id, t.requests.c.status == t.STORED))]
                    if problems:
                        reason = f"{check} failed: " + "; ".join(problems)
                        self._flag(conn, object_id, reason)
                    for row in rows:
                        content = (row.stage or {}).get("content")
                        status, messages = (t.ERROR, row.messages + [reason]) if problems else (t.SUCCESS, row.messages)
                        conn.execute(t.requests.update().where(t.requests.c.id == row.pk, t.requests.c.status == t.STORED).values(
                            status=status, stage=None, messages=messages, updated_at=_now()))
                        self._enqueue_response(conn, row.tenant, row.request_id, status, messages, None if problems else content)
                        counts[status] += 1
            return counts

        return self._with_retry(tx)

    def take_batches(self, tenant: str, run_id: str, statuses: Sequence[str], run_finished: Any) -> list[str]:
        """The tenant's batches holding requests in ``statuses`` that this run may work on, oldest first.

        A batch is this run's when it claimed it, or once its owner's run is over: it is then
        taken over with a conditional update, so two runs never work on one batch.
        """
        q = (sa.select(t.batches.c.id, t.batches.c.run_id, sa.func.min(t.batches.c.created_at))
             .join(t.requests, t.requests.c.batch_id == t.batches.c.id)
             .where(t.batches.c.tenant == tenant, t.requests.c.status.in_(list(statuses)))
             .group_by(t.batches.c.id, t.batches.c.run_id).order_by(sa.func.min(t.batches.c.created_at)))
        with self.engine.connect() as conn:
            found = [(b, owner) for b, owner, _ in conn.execute(q)]
        mine = []
        for batch_id, owner in found:
            if owner == run_id:
                mine.append(batch_id)
            elif run_finished(owner):
                def tx(batch_id: str = batch_id, owner: str = owner) -> int:
                    with self.engine.begin() as conn:
                        return conn.execute(t.batches.update().where(t.batches.c.id == batch_id, t.batches.c.run_id == owner)
                                             .values(run_id=run_id)).rowcount
                if self._with_retry(tx) == 1:
                    mine.append(batch_id)
        return mine

    def objects_for_batch(self, batch_id: str) -> list[StoredObject]:
        """Objects that a batch's requests point at (stored by it or deduplicated onto)."""
        q = (
            sa.select(t.objects)
            .where(t.objects.c.id.in_(sa.select(t.requests.c.object_id).where(t.requests.c.batch_id == batch_id)))
            .order_by(t.objects.c.id)
        )
        with self.engine.connect() as conn:
            return [_object(r) for r in conn.execute(q)]

    def objects(self, tenant: str | None = None) -> list[StoredObject]:
        q = sa.select(t.objects).order_by(t.objects.c.id)
        if tenant is not None:
            q = q.where(t.objects.c.tenant == tenant)
        with self.engine.connect() as conn:
            return [_object(r) for r in conn.execute(q)]

    def live_staged_paths(self, tenant: str) -> tuple[set[str], set[str]]:
        """What the tenant's staging folder must keep: (staged file paths, ids of open packages).

        A staged file is live while a request in flight (claimed, verified, or delayed in an
        open package) points at it; a package's tar while the package is still open.
        """
        in_flight = sa.select(t.requests.c.stage).where(t.requests.c.tenant == tenant,
                                                        t.requests.c.status.in_([t.CLAIMED, t.VERIFIED, t.DELAYED]))
        members = (sa.select(t.package_members.c.staged_path)
                   .join(t.packages, t.packages.c.id == t.package_members.c.package_id)
                   .where(t.packages.c.tenant == tenant, t.packages.c.state == "OPEN"))
        packages = sa.select(t.packages.c.id).where(t.packages.c.tenant == tenant, t.packages.c.state == "OPEN")
        with self.engine.connect() as conn:
            paths = {s["path"] for (s,) in conn.execute(in_flight) if s and s.get("path")}
            paths.update(p for (p,) in conn.execute(members) if p)
            return paths, {p for (p,) in conn.execute(packages)}

    def open_upload_ids(self) -> set[str]:
        """Multipart uploads that verified requests still wait on: never abort these."""
        q = sa.select(t.requests.c.stage).where(t.requests.c.status == t.VERIFIED)
        with self.engine.connect() as conn:
            return {s["upload_id"] for (s,) in conn.execute(q) if s and s.get("upload_id")}

    # ---- outbox -------------------------------------------------------------------------

    @staticmethod
    def _enqueue_response(conn: Any, tenant: str, request_id: str, status: str, messages: list[str],
                          content: dict[str, Any] | None) -> None:
        body = responses.response_body(request_id, status, messages, content)
        exists = conn.execute(_RESPONSE_EXISTS["delayed" if status == t.DELAYED else "terminal"],
                              {"tenant": tenant, "request_id": request_id}).first()
        if exists is None:  # exactly one terminal response per request id (and at most one DELAYED before it)
            conn.execute(t.responses.insert(), {"tenant": tenant, "request_id": request_id, "status": status, "body": body,
                                                "created_at": _now()})

    @staticmethod
    def _enqueue_responses(conn: Any, items: Sequence[tuple[str, str, str, list[str], dict[str, Any] | None]]) -> None:
        """``_enqueue_response`` for many requests of one status, with one lookup per 500 and one insert."""
        by_status: dict[str, list[tuple[str, str, list[str], dict[str, Any] | None]]] = {}
        for tenant, request_id, status, messages, content in items:
            by_status.setdefault(status, []).append((tenant, request_id, messages, content))
        now = _now()
        for status, group in by_status.items():
            same_kind = (status,) if status == t.DELAYED else t.TERMINAL
            answered: set[tuple[str, str]] = set()
            for start in range(0, len(group), 500):
                ids = list({request_id for _, request_id, _, _ in group[start:start + 500]})
                answered |= set(tuple(r) for r in conn.execute(sa.select(t.responses.c.tenant, t.responses.c.request_id).where(
                    t.responses.c.request_id.in_(ids), t.responses.c.status.in_(same_kind))))
            rows = []
            for tenant, request_id, messages, content in group:
                if (tenant, request_id) not in answered:
                    answered.add((tenant, request_id))
                    rows.append({"tenant": tenant, "request_id": request_id, "status": status, "created_at": now,
                                 "body": responses.response_body(request_id, status, messages, content)})
            if rows:
                conn.execute(t.responses.insert(), rows)

    def unpublished_responses(self, limit: int = 1000) -> list[dict[str, Any]]:
        q = sa.select(t.responses).where(t.responses.c.published_at.is_(None)).order_by(t.responses.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def mark_published(self, ids: Sequence[int]) -> None:
        if not ids:
            return

        def tx() -> None:
            with self.engine.begin() as conn:
                conn.execute(t.responses.update().where(t.responses.c.id.in_(list(ids))).values(published_at=_now()))

        self._with_retry(tx)

    def response_for(self, tenant: str, request_id: str) -> dict[str, Any] | None:
        """The terminal response of a request, if any."""
        q = sa.select(t.responses.c.body).where(t.responses.c.tenant == tenant, t.responses.c.request_id == request_id,
                                                t.responses.c.status.in_(t.TERMINAL))
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    # ---- reporting ----------------------------------------------------------------------

    def report(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """Per-request status and stored object, as ``glacier-pipelines report --json`` prints it."""
        r, o, pm = t.requests, t.objects, t.package_members
        q = (sa.select(r, o.c.bucket, o.c.key, o.c.storage_class, pm.c.name.label("member"))
             .select_from(r.outerjoin(o, r.c.object_id == o.c.id).outerjoin(pm, pm.c.request_pk == r.c.id))
             .order_by(r.c.id))
        if tenant is not None:
            q = q.where(r.c.tenant == tenant)
        out = []
        with self.engine.connect() as conn:
            for row in conn.execute(q):
                m = row._mapping
                stored = m["bucket"] is not None and m["status"] == t.SUCCESS
                out.append({
                    "requestId": m["request_id"], "tenant": m["tenant"], "status": m["status"],
                    "messages": list(m["messages"] or []),
                    "checksum": m["checksum"] if stored else None,
                    "algorithm": m["algorithm"] if stored else None,
                    "storedFileUrl": (member_url(m["bucket"], m["key"], m["member"]) if m["member"] else f"s3://{m['bucket']}/{m['key']}")
                    if stored else None,
                    "fileSizeInBytes": m["size"] if stored else None,
                    "widthInPx": m["width"] if stored else None,
                    "heightInPx": m["height"] if stored else None,
                    "storageClass": m["storage_class"] if stored else None,
                    "deduplicated": bool(m["deduplicated"]),
                    "batchId": m["batch_id"],
                    "runId": m["run_id"],
                })
        return out
