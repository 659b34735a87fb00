"""Claims: one run at a time works on an object, so concurrent runs copy or restore each object once.

Before a move copies an object, a vault migration retrieves or transfers an archive, or a restore
asks S3 for an object, the run claims it here with an atomic conditional insert (or, for a claim
that exists, a conditional update on its version), on SQLite and PostgreSQL alike. A run that finds
the object claimed by another live run leaves it to that run. A claim whose run is over is taken
over: its heartbeat is older than the timeout, its process (same host) is gone, or the caller's
``run_finished`` says the run ended. A finished claim (DONE or RELEASED) may be claimed again by any
run, which then reads the object's own row to see what is left to do.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.store import Catalog

MOVE, VAULT_ARCHIVE, VAULT_INVENTORY, RESTORE, DELIVERY = "move", "vault-archive", "vault-inventory", "restore", "restore-delivery"
HELD, DONE, RELEASED = "HELD", "DONE", "RELEASED"
# A claim not refreshed for this long belongs to a run that died; long copies refresh it per part.
CLAIM_TIMEOUT = timedelta(minutes=30)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def claimant() -> str:
    """This process, as ``host:pid``: a claim of a process that is gone (on this host) is taken over at once."""
    return f"{socket.gethostname()}:{os.getpid()}"


def local_run_id() -> str:
    """A run id for work done outside Dagster (tests, scripts): claims and reports need one."""
    return f"local-{uuid.uuid4().hex[:16]}"


def claim_key(*parts: Any) -> str:
    """The key of a claim: a SHA-256 of what names the object (URLs and archive ids can be long)."""
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode("utf-8")).hexdigest()


def insert_ignore(conn: sa.Connection, table: sa.Table, rows: dict[str, Any] | list[dict[str, Any]]) -> int:
    """``INSERT ... ON CONFLICT DO NOTHING`` (SQLite or PostgreSQL): rows whose key exists are left; the count inserted."""
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    return conn.execute(insert(table).on_conflict_do_nothing(), rows).rowcount


def process_gone(who: str | None) -> bool:
    """Whether ``host:pid`` names a process of this host that no longer exists (another host's: unknown, so False)."""
    host, _, pid = (who or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class Claim:
    scope: str
    key: str
    won: bool
    holder: str  # the run holding the claim now (this run when won)
    taken_from: str | None = None  # the run whose dead claim this run took over
    done_by: str | None = None  # the run that last finished work under this claim


class ClaimStore:
    """The claims of one catalog; ``run_finished(run_id)`` (optional) tells a run that is over."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        timeout: timedelta = CLAIM_TIMEOUT,
        run_finished: Callable[[str], bool] | None = None,
        who: str | None = None,
    ):
        self.catalog = catalog
        self.engine = catalog.engine
        self.timeout = timeout
        self.run_finished = run_finished
        self.who = who or claimant()

    def _tx(self, fn: Callable[[sa.Connection], Any]) -> Any:
        def run() -> Any:
            with self.engine.begin() as conn:
                return fn(conn)

        return self.catalog._with_retry(run)

    def dead(self, row: Any, now: datetime) -> bool:
        """Whether the run holding the claim ``row`` (a row or a dict of it) is over: heartbeat too old, its process gone,
        or Dagster says so."""
        m = row if isinstance(row, dict) else row._mapping
        if now - _utc(m["claimed_at"]) > self.timeout:
            return True
        if process_gone(m["claimant"]):
            return True
        return bool(self.run_finished and self.run_finished(m["claimed_by"]))

    def claim(self, scope: str, key: str, run_id: str, subject: str | None = None) -> Claim:
        """Claim the object for ``run_id``: won when nobody holds it, this run already does, or its holder is over."""
        c = t.claims

        def tx(conn: sa.Connection) -> Claim:
            now = _now()
            mine = {"state": HELD, "claimed_by": run_id, "claimant": self.who, "claimed_at": now}
            if insert_ignore(conn, c, {"scope": scope, "key": key, "subject": (subject or "")[:2000], "version": 1, **mine}) == 1:
                return Claim(scope, key, True, run_id)
            row = conn.execute(sa.select(c).where(c.c.scope == scope, c.c.key == key)).one()
            if row.state == HELD and row.claimed_by != run_id and not self.dead(row, now):
                return Claim(scope, key, False, row.claimed_by, done_by=row.done_by)
            taken = conn.execute(
                c.update().where(c.c.scope == scope, c.c.key == key, c.c.version == row.version).values(version=row.version + 1, **mine)
            ).rowcount
            if taken == 1:
                dead_holder = row.claimed_by if row.state == HELD and row.claimed_by != run_id else None
                return Claim(scope, key, True, run_id, taken_from=dead_holder, done_by=row.done_by)
            row = conn.execute(sa.select(c).where(c.c.scope == scope, c.c.key == key)).one()  # another run was quicker
            return Claim(scope, key, row.claimed_by == run_id and row.state == HELD, row.claimed_by, done_by=row.done_by)

        return self._tx(tx)

    def holder(self, scope: str, key: str, run_id: str) -> str | None:
        """The other live run holding the object, or None when ``run_id`` could claim it now (a read: nothing is written)."""
        row = self.get(scope, key)
        if row is None or row["state"] != HELD or row["claimed_by"] == run_id:
            return None
        return None if self.dead(row, _now()) else row["claimed_by"]

    def heartbeat(self, scope: str, key: str, run_id: str) -> bool:
        """Refresh a held claim (long work); False when it is no longer this run's."""
        c = t.claims
        return (
            self._tx(
                lambda conn: (
                    conn.execute(
                        c.update()
                        .where(c.c.scope == scope, c.c.key == key, c.c.claimed_by == run_id, c.c.state == HELD)
                        .values(claimed_at=_now(), version=c.c.version + 1)
                    ).rowcount
                )
            )
            == 1
        )

    def done(self, scope: str, key: str, run_id: str) -> None:
        """The work under the claim is finished by ``run_id``; any run may claim the object again for new work."""
        self._finish(scope, key, run_id, DONE)

    def release(self, scope: str, key: str, run_id: str) -> None:
        """Give the claim up without finishing (a failure): the next run takes the object at once."""
        self._finish(scope, key, run_id, RELEASED)

    def _finish(self, scope: str, key: str, run_id: str, state: str) -> None:
        c = t.claims
        values: dict[str, Any] = {"state": state, "version": c.c.version + 1}
        if state == DONE:
            values.update(done_by=run_id, done_at=_now())
        self._tx(
            lambda conn: conn.execute(
                c.update().where(c.c.scope == scope, c.c.key == key, c.c.claimed_by == run_id, c.c.state == HELD).values(**values)
            )
        )

    def release_all(self, run_id: str, scope: str | None = None) -> int:
        """Release every claim ``run_id`` still holds (a run ending by an exception); returns how many."""
        c = t.claims
        q = c.update().where(c.c.claimed_by == run_id, c.c.state == HELD)
        if scope is not None:
            q = q.where(c.c.scope == scope)
        return self._tx(lambda conn: conn.execute(q.values(state=RELEASED, version=c.c.version + 1)).rowcount)

    def get(self, scope: str, key: str) -> dict[str, Any] | None:
        c = t.claims
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(c).where(c.c.scope == scope, c.c.key == key)).first()
        return dict(row._mapping) if row else None
