"""The catalog: the queries the pipeline needs, each in its own short transaction.

Catalog is assembled from one class per concern: intake.py, batches.py, answers.py (the
check's answers), outbox.py and report.py; this module holds the connection, the storage of
verified and stored files, and the content lookups.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from glacier_pipelines.catalog import json_codec, schema
from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.answers import CheckAnswers
from glacier_pipelines.catalog.batches import BatchQueries
from glacier_pipelines.catalog.intake import IntakeQueries
from glacier_pipelines.catalog.outbox import Outbox
from glacier_pipelines.catalog.report import Reports
from glacier_pipelines.catalog.rows import RequestRow, StoredObject, _now, _object, _request_row, answer_stage

__all__ = ["Catalog", "RequestRow", "StoredObject", "answer_stage", "_object", "_request_row"]


# Statements run once per file are built once: SQLAlchemy caches the compiled form of a
# statement object, so rebuilding the expression on every call was most of a small file's cost.
_WHOLE_OBJECT_FLAGGED = sa.exists().where(t.bad_locations.c.object_id == t.objects.c.id, t.bad_locations.c.member == "")
_FIND_OBJECT = (
    sa.select(t.objects)
    .join(t.object_checksums, t.object_checksums.c.object_id == t.objects.c.id)
    .where(
        t.objects.c.tenant == sa.bindparam("tenant"),
        t.object_checksums.c.algorithm == sa.bindparam("algorithm"),
        t.object_checksums.c.checksum == sa.bindparam("checksum"),
        ~_WHOLE_OBJECT_FLAGGED,
    )
    .order_by(t.objects.c.id)
    .limit(1)
)
_MARK_VERIFIED = (
    t.requests.update()
    .where(t.requests.c.id == sa.bindparam("b_pk"))
    .values(
        status=t.VERIFIED,
        size=sa.bindparam("b_size"),
        width=sa.bindparam("b_width"),
        height=sa.bindparam("b_height"),
        stage=sa.bindparam("b_stage", type_=t.requests.c.stage.type),
        messages=sa.bindparam("b_messages", type_=t.requests.c.messages.type),
        updated_at=sa.bindparam("b_now"),
    )
)


# A stored package whose members still wait for package_integrity's verdict (answered DELAYED so far).
_PACKAGE_AWAITS_CHECK = sa.exists().where(
    t.package_members.c.package_id == t.packages.c.id,
    t.package_members.c.offset.is_not(None),
    t.requests.c.id == t.package_members.c.request_pk,
    t.requests.c.status == t.DELAYED,
)


class Catalog(IntakeQueries, BatchQueries, CheckAnswers, Outbox, Reports):
    """Records requests, batches, stored objects and the response outbox.

    SQLite (the default) runs in WAL mode with a busy timeout so a sensor and a run can
    share it; PostgreSQL is used as is. Writes retry briefly when the database is locked.
    """

    def __init__(self, url: str, *, create: bool = True):
        """Connect to the catalog at ``url``; a URL that cannot work raises ``CatalogConfigError`` at once (a ValueError
        naming GLACIER_CATALOG_URL, password masked), a database still unreachable after about 5 s ``CatalogUnavailable``."""
        from glacier_pipelines.catalog.errors import CatalogConfigError, CatalogUnavailable, first_line, masked_url

        self.url = url
        kwargs: dict[str, Any] = {"future": True, "json_serializer": json_codec.dumps, "json_deserializer": json_codec.loads}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True  # a database restart or failover leaves dead connections in the pool
        try:
            self.engine = sa.create_engine(url, **kwargs)
        except (sa.exc.ArgumentError, ValueError, ImportError) as exc:  # NoSuchModuleError (unknown dialect) is an ArgumentError
            raise CatalogConfigError(
                f"GLACIER_CATALOG_URL={masked_url(url)} is not a usable catalog URL ({first_line(exc)}); "
                "expected sqlite:///PATH or postgresql+psycopg2://USER@HOST:PORT/DATABASE"
            ) from None
        if url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", self._sqlite_pragmas)
        else:
            sa.event.listen(self.engine, "do_connect", self._connect_patiently)
        if create:
            try:
                self._with_retry(self._create_schema)
            except OperationalError as exc:
                if exc.statement is not None:
                    raise
                raise CatalogUnavailable(
                    f"the catalog at {masked_url(url)} is unreachable ({first_line(exc.orig or exc)}); "
                    "nothing was changed, try again once it is back (GLACIER_CATALOG_URL)"
                ) from None

    def _create_schema(self) -> None:
        """Create every table of an empty database at the newest schema revision; refuse an older catalog
        (``CatalogNeedsUpgrade``: run ``glacier-pipelines catalog upgrade``) instead of patching it (catalog/schema.py)."""
        schema.ensure(self.engine)

    def _connect_patiently(self, dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        """Open a server connection, waiting out a database that refuses them for a moment (about 5 s in all).

        The only retry loop around connecting: a permanent refusal (database or role that does not exist,
        failed authentication, bad option) raises ``CatalogConfigError`` at once, and ``_with_retry`` does not
        retry a failed connect again.
        """
        from glacier_pipelines.catalog.errors import config_error, is_permanent_connect_error

        for attempt in range(6):
            try:
                return dialect.loaded_dbapi.connect(*cargs, **cparams)
            except dialect.loaded_dbapi.Error as exc:
                if is_permanent_connect_error(exc):
                    raise config_error(self.url, exc) from None
                if attempt == 5 or not isinstance(exc, dialect.loaded_dbapi.OperationalError):
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
        """Retry a transaction when the database is locked or a statement lost its connection.

        A failed connect (no statement) is not retried here: ``_connect_patiently`` already waited it out,
        and nesting the two loops made a missing database take half a minute to report.
        """
        for attempt in range(attempts):
            try:
                return fn()
            except OperationalError as exc:
                if attempt == attempts - 1 or exc.statement is None:
                    raise
                time.sleep(0.2 * 2**attempt)
        return None

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

    # ---- verification and storage --------------------------------------------------------

    def mark_verified(
        self, pk: int, *, size: int | None, width: int | None, height: int | None, stage: dict[str, Any], messages: list[str]
    ) -> None:
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

    def known_checksums(self, tenant: str, pairs: Iterable[tuple[str | None, str]]) -> set[tuple[str | None, str]]:
        """Which (algorithm, checksum) pairs may already be stored for ``tenant`` (a superset; no false negatives).

        One query per 500 instead of two lookups per request: most requests of a batch are new content.
        """
        wanted = {(a, c.lower()) for a, c in pairs}
        found: set[tuple[str | None, str]] = set()
        values = sorted({c for _, c in wanted})
        with self.engine.connect() as conn:
            for start in range(0, len(values), 500):
                chunk = values[start : start + 500]
                found |= set(
                    tuple(r)
                    for r in conn.execute(
                        sa.select(t.object_checksums.c.algorithm, t.object_checksums.c.checksum)
                        .join(t.objects, t.objects.c.id == t.object_checksums.c.object_id)
                        .where(t.objects.c.tenant == tenant, t.object_checksums.c.checksum.in_(chunk))
                    )
                )
                found |= set(
                    tuple(r)
                    for r in conn.execute(
                        sa.select(t.requests.c.algorithm, t.requests.c.checksum).where(
                            t.requests.c.tenant == tenant, t.requests.c.status == t.SUCCESS, t.requests.c.checksum.in_(chunk)
                        )
                    )
                )
        return wanted & {(a, (c or "").lower()) for a, c in found}

    def known_sha256s(self, tenant: str, sha256s: Iterable[str]) -> set[str]:
        """Which of these SHA-256 digests an object or package member of ``tenant`` may hold (a superset)."""
        wanted, found = sorted(set(sha256s)), set()
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                found |= set(
                    conn.execute(
                        sa.select(t.object_checksums.c.checksum)
                        .join(t.objects, t.objects.c.id == t.object_checksums.c.object_id)
                        .where(
                            t.objects.c.tenant == tenant,
                            t.object_checksums.c.algorithm == "SHA-256",
                            t.object_checksums.c.checksum.in_(chunk),
                        )
                    ).scalars()
                )
                found |= set(
                    conn.execute(
                        sa.select(t.package_members.c.sha256).where(
                            t.package_members.c.tenant == tenant, t.package_members.c.sha256.in_(chunk)
                        )
                    ).scalars()
                )
        return found

    def flag_location(self, object_id: int, reason: str, member: str = "") -> None:
        """Remember that an object (or one member of a package) was missing or corrupt when read."""

        def tx() -> None:
            with self.engine.begin() as conn:
                self._flag(conn, object_id, reason, member)

        self._with_retry(tx)

    @staticmethod
    def _flag(conn: Any, object_id: int, reason: str, member: str = "") -> None:
        known = conn.execute(
            sa.select(t.bad_locations.c.object_id).where(t.bad_locations.c.object_id == object_id, t.bad_locations.c.member == member)
        ).first()
        if known is None:
            conn.execute(t.bad_locations.insert().values(object_id=object_id, member=member, reason=reason[:2000], flagged_at=_now()))

    def location_flagged(self, object_id: int, member: str = "") -> bool:
        """Whether the object, or this member of it, was flagged missing or corrupt."""
        q = sa.select(t.bad_locations.c.object_id).where(
            t.bad_locations.c.object_id == object_id, t.bad_locations.c.member.in_(["", member])
        )
        with self.engine.connect() as conn:
            return conn.execute(q).first() is not None

    def flagged_locations(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """Every flagged location (for reports and audits)."""
        q = (
            sa.select(t.bad_locations, t.objects.c.tenant, t.objects.c.bucket, t.objects.c.key)
            .join(t.objects, t.objects.c.id == t.bad_locations.c.object_id)
            .order_by(t.bad_locations.c.flagged_at)
        )
        if tenant is not None:
            q = q.where(t.objects.c.tenant == tenant)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def store(
        self,
        obj: dict[str, Any],
        checksums: dict[str, str],
        succeeded: list[tuple[RequestRow, bool, dict[str, Any]]],
        run_id: str,
        rewritten: bool = False,
    ) -> int:
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
                    inserted = conn.execute(t.objects.insert().values(stored_at=_now(), **obj))
                    object_id = inserted.inserted_primary_key[0]  # type: ignore[index]  # an INSERT has its key
                else:
                    object_id = existing
                    if rewritten:  # the bytes were uploaded again at the same key: the location is sound again
                        conn.execute(
                            t.objects.update()
                            .where(t.objects.c.id == object_id)
                            .values(s3_checksum=obj["s3_checksum"], etag=obj["etag"], stored_at=_now())
                        )
                        conn.execute(t.bad_locations.delete().where(t.bad_locations.c.object_id == object_id))
                known = {
                    r[0] for r in conn.execute(sa.select(t.object_checksums.c.algorithm).where(t.object_checksums.c.object_id == object_id))
                }
                for algorithm, value in checksums.items():
                    if algorithm not in known:
                        conn.execute(t.object_checksums.insert().values(object_id=object_id, algorithm=algorithm, checksum=value.lower()))
                for row, deduplicated, content in succeeded:
                    conn.execute(
                        t.requests.update()
                        .where(t.requests.c.id == row.pk)
                        .values(
                            status=t.STORED,
                            object_id=object_id,
                            deduplicated=deduplicated,
                            stage=answer_stage(content),
                            size=obj["size"],
                            width=row.width,
                            height=row.height,
                            updated_at=_now(),
                            run_id=run_id,
                            messages=row.messages,
                        )
                    )
                return object_id

        return self._with_retry(tx)

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
        open package) points at it; a package's tar while the package is still open (or being closed).
        """
        in_flight = sa.select(t.requests.c.stage).where(
            t.requests.c.tenant == tenant, t.requests.c.status.in_([t.CLAIMED, t.VERIFIED, t.DELAYED])
        )
        members = (
            sa.select(t.package_members.c.staged_path)
            .join(t.packages, t.packages.c.id == t.package_members.c.package_id)
            .where(t.packages.c.tenant == tenant, t.packages.c.state.in_(["OPEN", "CLOSING"]))
        )
        packages = sa.select(t.packages.c.id).where(t.packages.c.tenant == tenant, t.packages.c.state.in_(["OPEN", "CLOSING"]))
        with self.engine.connect() as conn:
            paths = {s["path"] for (s,) in conn.execute(in_flight) if s and s.get("path")}
            paths.update(p for (p,) in conn.execute(members) if p)
            return paths, {p for (p,) in conn.execute(packages)}

    def open_upload_ids(self) -> set[str]:
        """Multipart uploads that verified requests still wait on: never abort these."""
        q = sa.select(t.requests.c.stage).where(t.requests.c.status == t.VERIFIED)
        with self.engine.connect() as conn:
            return {s["upload_id"] for (s,) in conn.execute(q) if s and s.get("upload_id")}
