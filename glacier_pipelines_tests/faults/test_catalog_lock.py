"""The catalog side: the database locked or unavailable for a moment in the middle of a batch.

SQLite: ``BEGIN EXCLUSIVE`` from another connection keeps every writer out (readers go on:
the catalog runs in WAL mode). PostgreSQL: every connection of the catalog's database is
killed and new ones are refused (``ALLOW_CONNECTIONS false``) for a moment. Either way the
batch must wait, then finish: nothing failed for it, nothing corrupted.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import datetime, timezone

import pytest

from glacier_pipelines_tests.faults.conftest import MiB

pytestmark = [pytest.mark.faults, pytest.mark.slow]
HOLD_SECONDS = 1.5


def _lock(db: str) -> sqlite3.Connection:
    conn = sqlite3.connect(db, timeout=10, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


def _submit_five(fault_env):
    """Four small requests and one multipart-sized one, submitted; returns them."""
    reqs = []
    for i, size in enumerate([800, 1600, 2400, 3200, 6 * MiB]):
        data = fault_env.data(size)
        reqs.append(fault_env.request(f"r{i}", fault_env.file(f"r{i}", data), data))
    fault_env.submit(*reqs)
    return reqs


def test_sqlite_catalog_locked_for_a_moment_mid_batch(fault_env, reliability):
    from glacier_pipelines.flows import archive as flow

    reqs = _submit_five(fault_env)
    setup = fault_env.setup()
    db = str(fault_env.home / "catalog.sqlite")
    batch, _ = flow.claim_batch(setup.catalog, "lab", "run-1", 500, lambda run: True)

    holder = _lock(db)  # another process's transaction, in the middle of the batch
    released = {}

    def release() -> None:
        time.sleep(HOLD_SECONDS)
        holder.execute("COMMIT")
        released["at"] = datetime.now(timezone.utc)
        holder.close()

    started = time.monotonic()
    threading.Thread(target=release, daemon=True).start()
    verified = flow.verify_batch(setup, batch, "lab", "run-1")
    stored = flow.store_batch(setup, batch, "lab", "run-1")
    flow.check_batch(setup, batch)  # the blocking check answers the stored requests
    elapsed = time.monotonic() - started
    assert verified.failed == [] and stored.failed == [] and stored.stored == len(reqs)
    assert elapsed >= HOLD_SECONDS * 0.9, "the batch never met the lock"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        (updated,) = conn.execute("SELECT max(updated_at) FROM requests").fetchone()
    assert datetime.fromisoformat(updated).replace(tzinfo=timezone.utc) >= released["at"]  # written after the release
    reliability(
        f"catalog SQLite locked (BEGIN EXCLUSIVE from another connection) {HOLD_SECONDS} s mid-batch",
        1,
        fault_env.check(),
        side="catalog",
        outcome="the batch waited and finished; PRAGMA integrity_check ok",
    )


@pytest.mark.postgres
def test_postgres_catalog_unavailable_for_a_moment_mid_batch(fault_env, reliability, monkeypatch, postgres_url):
    """PostgreSQL: every catalog connection killed and new ones refused for a moment, in the middle of a batch."""
    import sqlalchemy as sa

    from glacier_pipelines.flows import archive as flow

    monkeypatch.setenv("GLACIER_CATALOG_URL", postgres_url)
    reqs = _submit_five(fault_env)
    setup = fault_env.setup()
    batch, _ = flow.claim_batch(setup.catalog, "lab", "run-1", 500, lambda run: True)
    name = sa.engine.make_url(postgres_url).database
    admin = sa.create_engine(sa.engine.make_url(postgres_url).set(database="postgres"), isolation_level="AUTOCOMMIT")

    def outage() -> int:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            return len(
                conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}).fetchall()
            )

    def back() -> None:
        time.sleep(HOLD_SECONDS)
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))

    killed = outage()
    threading.Thread(target=back, daemon=True).start()
    verified = flow.verify_batch(setup, batch, "lab", "run-1")
    stored = flow.store_batch(setup, batch, "lab", "run-1")
    flow.check_batch(setup, batch)  # the blocking check answers the stored requests
    admin.dispose()
    assert killed >= 1  # the catalog's pooled connections were there to be killed
    assert verified.failed == [] and stored.failed == [] and stored.stored == len(reqs)
    reliability(
        f"catalog PostgreSQL unavailable {HOLD_SECONDS} s mid-batch (connections killed, new ones refused)",
        1,
        fault_env.check(),
        side="catalog",
        outcome=f"{killed} pooled connection(s) killed; the batch waited and finished",
    )
