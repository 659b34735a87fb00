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


def test_json_columns_read_what_the_standard_codec_wrote_and_write_what_it_reads(archive, catalog):
    """The catalog's JSON codec (orjson, catalog/json_codec.py) and the standard library's are interchangeable on disk:
    a catalog written by an earlier release reads back, and what is written now is plain JSON to any reader."""
    import json

    import sqlalchemy as sa

    from glacier_pipelines.catalog import tables as t

    archive.submit(*_requests(archive, "lab", 1))
    (row,) = catalog.batch_requests(catalog.claim_batch("lab", "run-1", 1)[0])
    value = {"kind": "member", "size": 2**53 + 1, 7: "an int key", "ünïcode": "çödé ✓", "nested": [1.5, None, True, {"a": []}]}
    expected = json.loads(json.dumps(value))  # what json wrote: the int key as "7"
    with catalog.engine.begin() as conn:
        conn.execute(t.requests.update().where(t.requests.c.id == row.pk).values(stage=value))
        raw = conn.execute(sa.select(sa.cast(t.requests.c.stage, sa.Text)).where(t.requests.c.id == row.pk)).scalar()
        assert json.loads(raw) == expected  # any JSON reader reads it
        placeholder = "CAST(:v AS JSON)" if catalog.engine.dialect.name == "postgresql" else ":v"
        earlier = dict(expected, written_by="json.dumps")
        conn.execute(sa.text(f"UPDATE requests SET stage = {placeholder} WHERE id = :pk"), {"v": json.dumps(earlier), "pk": row.pk})
    (again,) = catalog.batch_requests(row.batch_id)
    assert again.stage == earlier


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


def _intake_mix(tenant: str, new: int = 30) -> list[dict]:
    """New, twice in the batch, invalid, invalid then sent again valid, and one the catalog already holds."""
    md5 = "0" * 32
    one = {"tenant": tenant, "checksum": md5, "algorithm": "MD5", "url": "file:///data/x", "destinationDirectory": "dir"}
    return [
        *({**one, "requestId": f"new-{i}"} for i in range(new)),
        {**one, "requestId": "twice"},
        {**one, "requestId": "bad", "checksum": "not-hex"},
        {**one, "requestId": "twice"},
        {**one, "requestId": "fixed", "algorithm": "NOPE"},
        {**one, "requestId": "known"},
        {**one, "requestId": "fixed"},
        {**one, "requestId": "bad", "checksum": "not-hex"},
    ]


def test_a_batch_records_in_a_few_statements_what_one_message_at_a_time_records(catalog):
    """record_requests inserts a batch's unseen requests in one statement (catalog/intake.py): the outcomes, the rows
    and the outbox must be those of recording the same messages one call each, and the statements must not grow per message."""
    import sqlalchemy as sa

    from glacier_pipelines.catalog import tables as t
    from glacier_pipelines.core.requests import parse_submission

    for tenant in ("batch", "more", "one"):  # the catalog already holds "known"
        catalog.record_requests([(parse_submission(next(m for m in _intake_mix(tenant) if m["requestId"] == "known")), "m")])

    def recorded(messages: list[dict]) -> tuple[list[str], int]:
        statements: list[str] = []

        def count(conn, cursor, statement, *rest):
            statements.append(statement)

        sa.event.listen(catalog.engine, "before_cursor_execute", count)
        try:
            return catalog.record_requests([(parse_submission(m), f"m{i}") for i, m in enumerate(messages)]), len(statements)
        finally:
            sa.event.remove(catalog.engine, "before_cursor_execute", count)

    batch, counted = recorded(_intake_mix("batch"))
    more, counted_more = recorded(_intake_mix("more", new=300))
    single = [catalog.record_requests([(parse_submission(m), f"m{i}")])[0] for i, m in enumerate(_intake_mix("one"))]

    assert batch == single
    assert batch[:31] == ["new"] * 31 and batch[31:] == ["invalid", "duplicate", "invalid", "duplicate", "retried", "duplicate"]
    assert more == ["new"] * 270 + batch
    assert counted_more == counted  # 270 more new messages, not one statement more (one INSERT each before)

    def kept(tenant: str) -> tuple[list, list]:
        with catalog.engine.connect() as conn:
            requests = conn.execute(
                sa.select(t.requests.c.request_id, t.requests.c.status, t.requests.c.messages)
                .where(t.requests.c.tenant == tenant)
                .order_by(t.requests.c.request_id)
            ).all()
            outbox = conn.execute(
                sa.select(t.responses.c.request_id, t.responses.c.status, t.responses.c.body)
                .where(t.responses.c.tenant == tenant)
                .order_by(t.responses.c.id)
            ).all()
        return [tuple(r) for r in requests], [tuple(r) for r in outbox]

    assert kept("batch") == kept("one")
    requests, outbox = kept("batch")
    assert ("fixed", "PENDING") in {r[:2] for r in requests} and ("bad", "INVALID_CONTENT") in {r[:2] for r in requests}
    assert [r[:2] for r in outbox if r[0] == "bad"] == [("bad", "INVALID_CONTENT")]  # answered once, though sent twice
