"""The read-only stores the cost report, reconciliation, audit and restore check use: typed rows, tenants apart, on SQLite and PostgreSQL.

Rows are written straight into the tables (the tests' own SQL), so each store is checked against
data it did not write itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.audit import AuditQueries, CopyRecord, RequestRecord
from glacier_pipelines.catalog.base import CatalogStore, utc
from glacier_pipelines.catalog.costs import CostQueries, Held, RestoreEstimate
from glacier_pipelines.catalog.reconcile import NamedKey, ReconcileQueries
from glacier_pipelines.catalog.verifications import RestoredVerification, VerificationQueries
from glacier_pipelines_tests.integration.conftest import postgres_url  # noqa: F401  (the fixture, for the postgresql parameter)

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def catalog(request, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    cat = Catalog(url)
    assert cat.engine.dialect.name == request.param
    yield cat
    cat.dispose()


def _object(conn, tenant, key, *, storage_class="DEEP_ARCHIVE", size=100, bucket="archive", run_id="run-1") -> int:
    return conn.execute(
        t.objects.insert().values(
            tenant=tenant,
            bucket=bucket,
            key=key,
            storage_class=storage_class,
            size=size,
            sha256="ab" * 32,
            s3_checksum="c2hh",
            stored_at=T0,
            run_id=run_id,
            batch_id=None,
        )
    ).inserted_primary_key[0]


def _request(conn, tenant, request_id, *, status=t.SUCCESS, object_id=None, size=None, stage=None, batch_id=None) -> int:
    return conn.execute(
        t.requests.insert().values(
            tenant=tenant,
            request_id=request_id,
            owner="alice",
            session="s1",
            body={"url": "https://example.org/f?X-Amz-Signature=secret"},
            received_at=T0,
            updated_at=T0 + timedelta(minutes=1),
            status=status,
            messages=["note"],
            algorithm="MD5",
            checksum="aa" * 16,
            batch_id=batch_id,
            object_id=object_id,
            deduplicated=False,
            size=size,
            stage=stage,
            run_id="run-1",
        )
    ).inserted_primary_key[0]


def _restore(conn, tenant, object_id, *, tier="Bulk", status="READY", usd=0.5, run_id="run-r", request_id=None, member=None) -> None:
    conn.execute(
        t.restores.insert().values(
            restore_id=f"r-{object_id}-{status}-{request_id}",
            tenant=tenant,
            selector="s",
            object_id=object_id,
            request_id=request_id,
            member=member,
            tier=tier,
            days=3,
            requester="a@example.org",
            status=status,
            messages=[],
            requested_at=T0,
            updated_at=T0,
            estimated_cost_usd=usd,
            run_id=run_id,
            download_url="https://example.org/x?X-Amz-Signature=secret",
        )
    )


def test_every_store_shares_the_base(catalog):
    for store in (CostQueries, ReconcileQueries, AuditQueries, VerificationQueries):
        assert issubclass(store, CatalogStore)
        assert store(catalog).engine is catalog.engine
    assert CatalogStore(catalog).transaction(lambda conn: conn.execute(sa.select(sa.literal(7))).scalar()) == 7
    assert CatalogStore.now().tzinfo is not None
    assert utc(datetime(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_cost_holdings_count_bytes_per_tenant_class_and_tier(catalog):
    with catalog.engine.begin() as conn:
        a = _object(conn, "lab", "archive/lab/a", size=100)
        _object(conn, "lab", "archive/lab/b", size=50)
        _object(conn, "lab", "archive/lab/c", storage_class="GLACIER", size=7)
        m = _object(conn, "museum", "archive/museum/m", size=1000)
        _request(conn, "lab", "waiting", status=t.VERIFIED, size=30, stage={"kind": "file", "path": "s3://staging/lab/x"})
        _request(conn, "lab", "local", status=t.VERIFIED, size=999, stage={"kind": "file", "path": "/tmp/staged"})  # not in a bucket
        _restore(conn, "lab", a, status="READY", usd=0.25, member={"name": "x", "offset": 0, "length": 11, "sha256": "00"})
        _restore(conn, "lab", a, status="PENDING", usd=0.5)
        _restore(conn, "lab", a, status="FAILED", usd=9.0)  # a failed restore costs nothing
        _restore(conn, "museum", m, tier="Standard", usd=None)
    held = CostQueries(catalog).holdings()
    assert held.archived == [Held("lab", "DEEP_ARCHIVE", 2, 150), Held("lab", "GLACIER", 1, 7), Held("museum", "DEEP_ARCHIVE", 1, 1000)]
    assert held.staged == [Held("lab", "STANDARD", 1, 30)]
    assert held.restored_copies == [Held("lab", "STANDARD", 1, 11)]
    assert held.restores == [
        RestoreEstimate("lab", "DEEP_ARCHIVE", "Bulk", 2, 200, 0.75),
        RestoreEstimate("museum", "DEEP_ARCHIVE", "Standard", 1, 1000, None),
    ]
    museum = CostQueries(catalog).holdings("museum")
    assert museum.archived == [Held("museum", "DEEP_ARCHIVE", 1, 1000)] and not museum.staged and not museum.restored_copies
    assert [r.tenant for r in museum.restores] == ["museum"]


def test_named_keys_are_the_tenants_objects_and_manifests(catalog):
    with catalog.engine.begin() as conn:
        _object(conn, "lab", "archive/lab/a")
        package = _object(conn, "lab", "archive/lab/packages/p.tar")
        _object(conn, "lab", "old/lab/a", bucket="elsewhere")
        _object(conn, "museum", "archive/museum/a")
        conn.execute(
            t.packages.insert().values(
                id="p1",
                tenant="lab",
                state="STORED",
                created_at=T0,
                member_bytes=1,
                object_id=package,
                manifest_key="archive/lab/packages/p.json",
            )
        )
    keys = ReconcileQueries(catalog).named_keys("lab")
    assert keys == [
        NamedKey("archive", "archive/lab/a", "object"),
        NamedKey("archive", "archive/lab/packages/p.tar", "object"),
        NamedKey("elsewhere", "old/lab/a", "object"),
        NamedKey("archive", "archive/lab/packages/p.json", "manifest"),
    ]
    assert ReconcileQueries(catalog).named_keys("nobody") == []


def test_restored_verifications_of_one_run(catalog):
    with catalog.engine.begin() as conn:
        good, bad, other = (_object(conn, "lab", k) for k in ("archive/lab/good", "archive/lab/bad", "archive/lab/other"))
        _restore(conn, "lab", good, run_id="run-r")
        _restore(conn, "lab", bad, run_id="run-r")
        _restore(conn, "lab", other, run_id="run-other")
        for oid, verified, message in ((good, True, None), (bad, False, "SHA-256 differs"), (other, False, "x")):
            conn.execute(
                t.object_restores.insert().values(
                    object_id=oid,
                    state="RESTORED",
                    tier="Bulk",
                    days=1,
                    requested_at=T0,
                    poll_attempts=0,
                    verified=verified,
                    verify_message=message,
                )
            )
    rows = VerificationQueries(catalog).restored_by_run("run-r")
    assert rows == [
        RestoredVerification("archive", "archive/lab/good", True, None),
        RestoredVerification("archive", "archive/lab/bad", False, "SHA-256 differs"),
    ]
    assert rows[1].url == "s3://archive/archive/lab/bad"
    assert VerificationQueries(catalog).restored_by_run("run-none") == []


def test_a_request_history_is_typed_and_stays_within_the_tenant(catalog):
    with catalog.engine.begin() as conn:
        conn.execute(t.batches.insert().values(id="b1", tenant="lab", run_id="run-b", created_at=T0, request_count=1))
        oid = _object(conn, "lab", "archive/lab/f")
        conn.execute(t.object_checksums.insert().values(object_id=oid, algorithm="SHA-256", checksum="ab" * 32))
        conn.execute(t.object_checksums.insert().values(object_id=oid, algorithm="MD5", checksum="aa" * 16))
        _request(conn, "lab", "shared-id", object_id=oid, size=100, batch_id="b1")
        _request(conn, "museum", "shared-id", status=t.ERROR)
        conn.execute(
            t.responses.insert().values(
                tenant="lab", request_id="shared-id", status="SUCCESS", body={"messages": ["ok"]}, created_at=T0, published_at=None
            )
        )
        _restore(conn, "lab", oid, request_id=None)  # a restore of the whole object names this file's bytes too
        _restore(conn, "museum", oid, request_id="shared-id")  # another tenant's restore is not this request's
        conn.execute(
            t.object_restores.insert().values(
                object_id=oid, state="RESTORED", tier="Bulk", days=1, requested_at=T0, restored_at=T0, poll_attempts=0, verified=True
            )
        )
    store = AuditQueries(catalog)
    assert {r.tenant for r in store.requests_named("shared-id")} == {"lab", "museum"}
    [lab] = store.requests_named("shared-id", "lab")
    assert isinstance(lab, RequestRecord) and lab.received_at == T0 and lab.updated_at.tzinfo is not None
    history = store.history(lab)
    assert history.batch.batch_id == "b1" and history.batch.run_id == "run-b" and history.batch.created_at == T0
    assert history.object.url == "s3://archive/archive/lab/f" and history.object.checksums == {"MD5": "aa" * 16, "SHA-256": "ab" * 32}
    assert history.member is None
    assert [(x.status, x.messages, x.published_at) for x in history.responses] == [("SUCCESS", ["ok"], None)]
    assert len(history.restores) == 1 and history.restores[0].tier == "Bulk"
    assert history.restores[0].copy == CopyRecord("RESTORED", T0, None, True, None)
    assert store.requests_named("shared-id", "nobody") == []
