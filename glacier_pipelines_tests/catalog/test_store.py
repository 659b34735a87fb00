"""The catalog's promises, each on SQLite and on a fresh PostgreSQL database (fixture catalog_backend)."""

from __future__ import annotations

import threading

import pytest

from glacier_pipelines_tests.integration.conftest import postgres_url  # noqa: F401  (the fixture, for catalog_backend)


@pytest.fixture
def catalog(archive, catalog_backend):
    cat = archive.catalog()
    assert cat.engine.dialect.name == catalog_backend  # the parameter really chose the database
    return cat


def _requests(archive, tenant, n, start=0):
    return [
        archive.request(tenant, archive.file(f"{tenant}{i}", b"%d" % i), b"%d" % i, requestId=f"{tenant}-{i}")
        for i in range(start, start + n)
    ]


def test_a_request_is_recorded_once_whatever_the_redeliveries(archive, catalog):
    reqs = _requests(archive, "lab", 3)
    archive.submit(*reqs)
    archive.submit(*reqs, reqs[0])
    assert catalog.status_counts("lab") == {"PENDING": 3}
    assert catalog.tenants_with_work() == ["lab"]


def test_claims_are_bounded_disjoint_and_move_the_pending_marker(archive, catalog):
    archive.submit(*_requests(archive, "lab", 5), *_requests(archive, "museum", 1))
    before = catalog.pending_marker("lab")
    first, n1 = catalog.claim_batch("lab", "run-1", 2)
    assert n1 == 2 and catalog.pending_marker("lab") != before
    second, n2 = catalog.claim_batch("lab", "run-2", 10)
    assert n2 == 3 and catalog.pending_marker("lab") is None
    ids = [{r.request_id for r in catalog.batch_requests(b)} for b in (first, second)]
    assert not ids[0] & ids[1] and len(ids[0] | ids[1]) == 5
    assert catalog.batch_for_run("run-2") == second
    assert catalog.batch_runs_in_flight("lab") == {first: "run-1", second: "run-2"}
    assert catalog.status_counts("museum") == {"PENDING": 1}  # another tenant's work is untouched


def test_concurrent_claims_never_share_a_request(archive, catalog):
    archive.submit(*_requests(archive, "lab", 40))
    claimed: list[tuple[str, int]] = []
    errors: list[BaseException] = []

    def claim(run):
        try:
            for i in range(5):
                claimed.append(catalog.claim_batch("lab", f"{run}-{i}", 3))
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(f"run{i}",)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    members = [r.request_id for batch, n in claimed if n for r in catalog.batch_requests(batch)]
    assert len(members) == len(set(members)) == sum(n for _, n in claimed) > 0  # a claim that lost a race takes less, never a taken one
    assert len(members) + catalog.status_counts("lab").get("PENDING", 0) == 40


def test_an_invalid_request_is_answered_once_through_the_outbox(archive, catalog):
    bad = archive.request("lab", archive.file("x", b"x"), b"x", requestId="bad", checksum="not-hex")
    archive.submit(bad)
    archive.submit(bad)
    outbox = catalog.unpublished_responses()
    assert [(r["request_id"], r["status"]) for r in outbox] == [("bad", "INVALID_CONTENT")]
    catalog.mark_published([r["id"] for r in outbox])
    assert catalog.unpublished_responses() == []
    assert catalog.response_for("lab", "bad")["status"] == "INVALID_CONTENT"
    assert catalog.report("lab")[0]["status"] == "INVALID_CONTENT"


def test_an_index_added_since_is_created_on_a_catalog_made_before(archive, catalog):
    """A catalog from an earlier version (the table exists, a later index does not, no schema version) is refused when
    opened, and `catalog upgrade` adds the index (test_migrations.py covers tables, columns and PostgreSQL)."""
    import sqlalchemy as sa

    from glacier_pipelines.catalog import Catalog, schema

    archive.submit(*_requests(archive, "lab", 2))  # rows kept as they were
    with catalog.engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_requests_content"))
        conn.execute(sa.text(f"DROP TABLE {schema.VERSION_TABLE}"))
    assert "ix_requests_content" not in {ix["name"] for ix in sa.inspect(catalog.engine).get_indexes("requests")}
    with pytest.raises(schema.CatalogNeedsUpgrade, match="glacier-pipelines catalog upgrade"):
        Catalog(catalog.url)
    schema.upgrade(catalog.url)
    reopened = Catalog(catalog.url)
    assert "ix_requests_content" in {ix["name"] for ix in sa.inspect(reopened.engine).get_indexes("requests")}
    assert reopened.status_counts("lab") == {"PENDING": 2}
    Catalog(catalog.url)  # opening again changes nothing and raises nothing


def test_batch_requests_filter_on_the_stage_kind_in_sql(archive, catalog):
    """store_batch skips package members and glacier_packages takes only them, without decoding the others' rows."""
    archive.submit(*_requests(archive, "lab", 4))
    batch, _ = catalog.claim_batch("lab", "run-1", 4)
    rows = catalog.batch_requests(batch)
    stages = [{"kind": "member", "path": "a"}, {"kind": "file", "path": "b"}, {"kind": "duplicate", "of": rows[0].pk}, None]
    catalog.mark_verified_many(
        [{"pk": r.pk, "size": 1, "width": None, "height": None, "stage": s, "messages": []} for r, s in zip(rows, stages)]
    )
    ids = [r.request_id for r in rows]
    assert [r.request_id for r in catalog.batch_requests(batch, ["VERIFIED"], stage_kind="member")] == ids[:1]
    # a request without a stage counts as not a member
    assert [r.request_id for r in catalog.batch_requests(batch, ["VERIFIED"], not_stage_kind="member")] == ids[1:]
    assert [r.request_id for r in catalog.batch_requests(batch, ["VERIFIED"], stage_kind="file")] == ids[1:2]
