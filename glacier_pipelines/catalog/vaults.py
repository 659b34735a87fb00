"""Catalog queries of vault copies: ``VaultStore``, over the tables of catalog/vault_tables.py, returning the rows of
catalog/vault_rows.py. The archive statuses and their transitions are described in vault_tables.py."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from glacier_pipelines.catalog.claims import insert_ignore
from glacier_pipelines.catalog.store import Catalog
from glacier_pipelines.catalog.vault_rows import ArchiveRow, JobRow, PartRow, archive_row, job_row, utc
from glacier_pipelines.catalog.vault_tables import (
    ARCHIVE,
    DONE,
    FAILED,
    IN_PROGRESS,
    INVENTORY,
    NEW,
    PENDING,
    REQUESTED,
    SKIPPED,
    STAGED,
    STATUSES,
    SUCCEEDED,
    TRANSFERRING,
    metadata,
    vault_archives,
    vault_jobs,
    vault_parts,
    vault_progress,
)


def _now() -> datetime:
    return datetime.now(timezone.utc)


_created_engines: "weakref.WeakSet[sa.Engine]" = weakref.WeakSet()  # engines whose tables exist
_created_lock = threading.Lock()


class VaultStore:
    """The vault-copy queries, each in its own short transaction (retried while SQLite is locked)."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.engine = catalog.engine
        with _created_lock:
            if self.engine not in _created_engines:
                catalog._with_retry(lambda: metadata.create_all(self.engine))
                _created_engines.add(self.engine)

    def _tx(self, fn: Any) -> Any:
        def run() -> Any:
            with self.engine.begin() as conn:
                return fn(conn)

        return self.catalog._with_retry(run)

    # ---- jobs -----------------------------------------------------------------------------

    def record_job(
        self,
        *,
        job_id: str,
        vault: str,
        kind: str,
        initiated_at: datetime,
        archive_id: str | None = None,
        tier: str | None = None,
        fmt: str | None = None,
        size: int = 0,
        run_id: str | None = None,
    ) -> None:
        self._tx(
            lambda conn: conn.execute(
                vault_jobs.insert().values(
                    job_id=job_id,
                    vault=vault,
                    kind=kind,
                    archive_id=archive_id,
                    tier=tier,
                    format=fmt,
                    bytes=size,
                    status=IN_PROGRESS,
                    initiated_at=initiated_at,
                    run_id=run_id,
                )
            )
        )

    def job(self, job_id: str) -> JobRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(vault_jobs).where(vault_jobs.c.job_id == job_id)).first()
        return job_row(row) if row else None

    def latest_job(self, vault: str, kind: str) -> JobRow | None:
        q = (
            sa.select(vault_jobs)
            .where(vault_jobs.c.vault == vault, vault_jobs.c.kind == kind)
            .order_by(vault_jobs.c.initiated_at.desc(), vault_jobs.c.job_id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return job_row(row) if row else None

    def latest_loaded_inventory(self, vault: str) -> JobRow | None:
        q = (
            sa.select(vault_jobs)
            .where(vault_jobs.c.vault == vault, vault_jobs.c.kind == INVENTORY, vault_jobs.c.loaded_at.is_not(None))
            .order_by(vault_jobs.c.loaded_at.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return job_row(row) if row else None

    def pending_jobs(self, *, vault: str | None = None, kind: str | None = None, limit: int = 1000) -> list[JobRow]:
        """Jobs still InProgress, least recently checked first (so bounded polling rotates over all of them)."""
        q = sa.select(vault_jobs).where(vault_jobs.c.status == IN_PROGRESS)
        if vault is not None:
            q = q.where(vault_jobs.c.vault == vault)
        if kind is not None:
            q = q.where(vault_jobs.c.kind == kind)
        q = q.order_by(vault_jobs.c.checked_at.is_not(None), vault_jobs.c.checked_at, vault_jobs.c.initiated_at).limit(limit)
        with self.engine.connect() as conn:
            return [job_row(r) for r in conn.execute(q)]

    def update_job(self, job_id: str, **values: Any) -> None:
        self._tx(lambda conn: conn.execute(vault_jobs.update().where(vault_jobs.c.job_id == job_id).values(**values)))

    def quota_used(self, since: datetime) -> int:
        """Bytes of archive-retrieval jobs started at or after ``since``, over every vault (the quota is per account)."""
        q = sa.select(sa.func.coalesce(sa.func.sum(vault_jobs.c.bytes), 0)).where(
            vault_jobs.c.kind == ARCHIVE, vault_jobs.c.initiated_at >= since
        )
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar() or 0)

    def vaults_with_work(self) -> list[str]:
        """Vaults with an inventory job not yet loaded, or archives not yet in a terminal status."""
        jobs = sa.select(vault_jobs.c.vault).where(
            vault_jobs.c.kind == INVENTORY, vault_jobs.c.loaded_at.is_(None), vault_jobs.c.status.in_((IN_PROGRESS, SUCCEEDED))
        )
        archives = sa.select(vault_archives.c.vault).where(vault_archives.c.status.in_(PENDING))
        with self.engine.connect() as conn:
            return sorted({r[0] for r in conn.execute(jobs)} | {r[0] for r in conn.execute(archives)})

    # ---- archives -------------------------------------------------------------------------

    def archive_keys(self, vault: str) -> dict[str, str]:
        """archive id -> destination key of the archives already known for ``vault``."""
        q = sa.select(vault_archives.c.archive_id, vault_archives.c.destination_key).where(vault_archives.c.vault == vault)
        with self.engine.connect() as conn:
            return {a: k for a, k in conn.execute(q)}

    def add_archives(self, vault: str, rows: Sequence[dict[str, Any]], inventory_job_id: str, at: datetime) -> int:
        """Insert inventory rows not known yet (known archives keep their status and key); returns how many were new.

        A row another run inserted meanwhile (two migrations loading one inventory) is left as it is.
        """
        known = set(self.archive_keys(vault))
        new = [r for r in rows if r["archive_id"] not in known]

        def tx(conn: Any) -> int:
            for start in range(0, len(new), 500):
                insert_ignore(
                    conn,
                    vault_archives,
                    [
                        {
                            **r,
                            "vault": vault,
                            "status": NEW,
                            "messages": [],
                            "inventory_job_id": inventory_job_id,
                            "jobs_started": 0,
                            "job_failures": 0,
                            "attempts": 0,
                            "updated_at": at,
                        }
                        for r in new[start : start + 500]
                    ],
                )
            return len(new)

        return self._tx(tx)

    def archives(self, vault: str, statuses: Iterable[str] | None = None, *, limit: int | None = None, offset: int = 0) -> list[ArchiveRow]:
        """Archives of ``vault`` in creation order (then archive id), optionally only some statuses."""
        q = sa.select(vault_archives).where(vault_archives.c.vault == vault)
        if statuses is not None:
            q = q.where(vault_archives.c.status.in_(list(statuses)))
        q = q.order_by(vault_archives.c.creation_date, vault_archives.c.archive_id).offset(offset)
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [archive_row(r) for r in conn.execute(q)]

    def archive(self, pk: int) -> ArchiveRow:
        with self.engine.connect() as conn:
            return archive_row(conn.execute(sa.select(vault_archives).where(vault_archives.c.id == pk)).one())

    def archive_by_id(self, vault: str, archive_id: str) -> ArchiveRow | None:
        q = sa.select(vault_archives).where(vault_archives.c.vault == vault, vault_archives.c.archive_id == archive_id)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return archive_row(row) if row else None

    def archive_run_id(self, pk: int) -> str | None:
        """The run that last gave this archive a terminal status."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(vault_archives.c.run_id).where(vault_archives.c.id == pk)).scalar()

    def archive_for_job(self, job_id: str) -> ArchiveRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(vault_archives).where(vault_archives.c.job_id == job_id)).first()
        return archive_row(row) if row else None

    def update_archive(self, pk: int, *, message: str | None = None, **values: Any) -> None:
        """Set columns of one archive, appending ``message`` to its messages."""

        def tx(conn: Any) -> None:
            if message is not None:
                current = conn.execute(sa.select(vault_archives.c.messages).where(vault_archives.c.id == pk)).scalar() or []
                values["messages"] = list(current) + [message]
            conn.execute(vault_archives.update().where(vault_archives.c.id == pk).values(updated_at=_now(), **values))

        self._tx(tx)

    def start_job(self, row: ArchiveRow, *, job_id: str, tier: str, at: datetime, run_id: str | None, message: str | None) -> None:
        """Record a new archive-retrieval job (counted by the quota) and point the archive at it, in one transaction."""

        def tx(conn: Any) -> None:
            conn.execute(
                vault_jobs.insert().values(
                    job_id=job_id,
                    vault=row.vault,
                    kind=ARCHIVE,
                    archive_id=row.archive_id,
                    tier=tier,
                    bytes=row.size,
                    status=IN_PROGRESS,
                    initiated_at=at,
                    run_id=run_id,
                )
            )
            values: dict[str, Any] = dict(
                status=REQUESTED,
                job_id=job_id,
                job_started_at=at,
                job_completed_at=None,
                jobs_started=vault_archives.c.jobs_started + 1,
                updated_at=_now(),
                run_id=run_id,
            )
            if message is not None:
                values["messages"] = list(row.messages) + [message]
            conn.execute(vault_archives.update().where(vault_archives.c.id == row.pk).values(**values))

        self._tx(tx)

    def status_totals(self, vault: str) -> dict[str, tuple[int, int]]:
        """status -> (archives, bytes) for every status (zeros included)."""
        q = (
            sa.select(vault_archives.c.status, sa.func.count(), sa.func.coalesce(sa.func.sum(vault_archives.c.size), 0))
            .where(vault_archives.c.vault == vault)
            .group_by(vault_archives.c.status)
        )
        totals = {s: (0, 0) for s in STATUSES}
        with self.engine.connect() as conn:
            for status, n, size in conn.execute(q):
                totals[status] = (int(n), int(size))
        return totals

    def staged_state(self, vault: str) -> list[tuple[str, str | None, int]]:
        """(archive id, job id, attempts) of the archives waiting for a transfer."""
        q = (
            sa.select(vault_archives.c.archive_id, vault_archives.c.job_id, vault_archives.c.attempts)
            .where(vault_archives.c.vault == vault, vault_archives.c.status.in_((STAGED, TRANSFERRING)))
            .order_by(vault_archives.c.archive_id)
        )
        with self.engine.connect() as conn:
            return [(a, j, int(n)) for a, j, n in conn.execute(q)]

    def first_new(self, vault: str) -> ArchiveRow | None:
        rows = self.archives(vault, [NEW], limit=1)
        return rows[0] if rows else None

    # ---- parts ----------------------------------------------------------------------------

    def record_part(
        self, archive_pk: int, upload_id: str, part_number: int, *, etag: str, checksum_sha256: str, tree_hash: str, size: int
    ) -> None:
        def tx(conn: Any) -> None:
            conn.execute(vault_parts.delete().where(vault_parts.c.archive_pk == archive_pk, vault_parts.c.part_number == part_number))
            conn.execute(
                vault_parts.insert().values(
                    archive_pk=archive_pk,
                    part_number=part_number,
                    upload_id=upload_id,
                    etag=etag,
                    checksum_sha256=checksum_sha256,
                    tree_hash=tree_hash,
                    size=size,
                    uploaded_at=_now(),
                )
            )

        self._tx(tx)

    def parts(self, archive_pk: int, upload_id: str) -> dict[int, PartRow]:
        q = (
            sa.select(vault_parts)
            .where(vault_parts.c.archive_pk == archive_pk, vault_parts.c.upload_id == upload_id)
            .order_by(vault_parts.c.part_number)
        )
        with self.engine.connect() as conn:
            return {
                r.part_number: PartRow(r.part_number, r.upload_id, r.etag, r.checksum_sha256, r.tree_hash, r.size) for r in conn.execute(q)
            }

    def clear_parts(self, archive_pk: int) -> None:
        self._tx(lambda conn: conn.execute(vault_parts.delete().where(vault_parts.c.archive_pk == archive_pk)))

    def start_upload(self, archive_pk: int, upload_id: str, chunk_size: int, bucket: str) -> None:
        def tx(conn: Any) -> None:
            conn.execute(vault_parts.delete().where(vault_parts.c.archive_pk == archive_pk))
            conn.execute(
                vault_archives.update()
                .where(vault_archives.c.id == archive_pk)
                .values(status=TRANSFERRING, upload_id=upload_id, chunk_size=chunk_size, bucket=bucket, updated_at=_now())
            )

        self._tx(tx)

    def finish(self, archive_pk: int, status: str, *, message: str, at: datetime, run_id: str | None = None, **values: Any) -> None:
        """A terminal status for one archive: its parts are forgotten and its upload id cleared."""

        def tx(conn: Any) -> None:
            current = conn.execute(sa.select(vault_archives.c.messages).where(vault_archives.c.id == archive_pk)).scalar() or []
            conn.execute(vault_parts.delete().where(vault_parts.c.archive_pk == archive_pk))
            extra = {"done_at": at} if status == DONE else {}
            conn.execute(
                vault_archives.update()
                .where(vault_archives.c.id == archive_pk)
                .values(
                    status=status, upload_id=None, messages=list(current) + [message], updated_at=_now(), run_id=run_id, **extra, **values
                )
            )

        self._tx(tx)

    # ---- progress -------------------------------------------------------------------------

    def record_progress(self, vault: str, *, run_id: str | None, at: datetime, bytes_transferred: int) -> dict[str, Any]:
        totals = self.status_totals(vault)
        row = {
            "vault": vault,
            "run_id": run_id,
            "recorded_at": at,
            "archives_total": sum(n for n, _ in totals.values()),
            "archives_done": totals[DONE][0],
            "bytes_total": sum(b for _, b in totals.values()),
            "bytes_done": totals[DONE][1],
            "bytes_failed": totals[FAILED][1],
            "bytes_skipped": totals[SKIPPED][1],
            "bytes_transferred": bytes_transferred,
        }
        self._tx(lambda conn: conn.execute(vault_progress.insert().values(**row)))
        return row

    def progress(self, vault: str) -> list[dict[str, Any]]:
        q = sa.select(vault_progress).where(vault_progress.c.vault == vault).order_by(vault_progress.c.recorded_at, vault_progress.c.id)
        with self.engine.connect() as conn:
            return [{**dict(r._mapping), "recorded_at": utc(r.recorded_at)} for r in conn.execute(q)]
