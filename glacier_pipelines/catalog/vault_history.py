"""Catalog queries of the vault ledger (core/vault_ledger.py): the rows S3 does not hold as they are yet, and the rows a
rebuild gives back."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from glacier_pipelines.catalog.base import CatalogStore
from glacier_pipelines.catalog.claims import insert_ignore
from glacier_pipelines.catalog.store import Catalog
from glacier_pipelines.catalog.vault_tables import DONE, FAILED, INVENTORY, NEW, SKIPPED, SUCCEEDED, vault_archives, vault_jobs
from glacier_pipelines.catalog.vaults import VaultStore

# Statuses the ledger records; an archive REQUESTED, STAGED or TRANSFERRING is written when it first appears (as NEW for a
# rebuild: its job is not known after one) and again once it settles.
SETTLED = (NEW, DONE, FAILED, SKIPPED)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class VaultHistory(CatalogStore):
    def __init__(self, catalog: Catalog):
        super().__init__(catalog)
        VaultStore(catalog)  # the vault tables exist

    def _tx(self, fn: Any) -> Any:
        def run() -> Any:
            with self.engine.begin() as conn:
                return fn(conn)

        return self.catalog._with_retry(run)

    def unledgered(self, vault: str, limit: int) -> list[dict[str, Any]]:
        """Archives of ``vault`` the ledger does not hold yet, or holds with another settled status than they have now."""
        a = vault_archives
        q = (
            sa.select(a)
            .where(
                a.c.vault == vault,
                sa.or_(a.c.ledgered_status.is_(None), sa.and_(a.c.status.in_(SETTLED), a.c.status != a.c.ledgered_status)),
            )
            .order_by(a.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def mark_ledgered(self, rows: list[dict[str, Any]]) -> None:
        """The ledger now holds these rows with the status they were read with (a row changed since is written next time)."""
        a = vault_archives

        def tx(conn: Any) -> None:
            for row in rows:
                conn.execute(
                    a.update().where(a.c.id == row["id"], a.c.updated_at == row["updated_at"]).values(ledgered_status=row["status"])
                )

        self._tx(tx)

    # ---- rebuild --------------------------------------------------------------------------

    def add_inventory(
        self,
        *,
        vault: str,
        job_id: str,
        fmt: str | None,
        initiated_at: datetime,
        completed_at: datetime | None,
        loaded_at: datetime | None,
        result: dict[str, Any] | None,
        run_id: str | None,
    ) -> bool:
        """The loaded inventory job a vault's archives came from; False when the catalog has it already."""
        return (
            self._tx(
                lambda conn: insert_ignore(
                    conn,
                    vault_jobs,
                    {
                        "job_id": job_id,
                        "vault": vault,
                        "kind": INVENTORY,
                        "format": fmt,
                        "bytes": 0,
                        "status": SUCCEEDED,
                        "initiated_at": initiated_at,
                        "completed_at": completed_at,
                        "checked_at": loaded_at,
                        "loaded_at": loaded_at,
                        "result": result,
                        "run_id": run_id,
                    },
                )
            )
            == 1
        )

    def add_archive(self, row: dict[str, Any]) -> bool:
        """One archive's row as the ledger (or its copy's metadata) gives it; False when the catalog has it already."""
        now = _now()
        values = {"jobs_started": 0, "job_failures": 0, "attempts": 0, "updated_at": now, **row}
        return self._tx(lambda conn: insert_ignore(conn, vault_archives, values)) == 1

    def known_keys(self, vault: str) -> dict[str, tuple[str, str]]:
        """destination key -> (archive id, status) of the vault's archives."""
        a = vault_archives
        with self.engine.connect() as conn:
            return {
                k: (i, s) for k, i, s in conn.execute(sa.select(a.c.destination_key, a.c.archive_id, a.c.status).where(a.c.vault == vault))
            }

    def mark_done_from_copy(
        self, vault: str, archive_id: str, *, bucket: str, etag: str | None, s3_checksum: str | None, message: str
    ) -> None:
        """An archive whose copy S3 holds (its metadata names it) though the ledger did not say DONE yet."""
        a = vault_archives

        def tx(conn: Any) -> None:
            row = conn.execute(sa.select(a.c.id, a.c.messages).where(a.c.vault == vault, a.c.archive_id == archive_id)).one()
            conn.execute(
                a.update()
                .where(a.c.id == row.id)
                .values(
                    status=DONE,
                    bucket=bucket,
                    etag=etag,
                    s3_checksum=s3_checksum,
                    done_at=_now(),
                    updated_at=_now(),
                    messages=list(row.messages or []) + [message],
                )
            )

        self._tx(tx)
