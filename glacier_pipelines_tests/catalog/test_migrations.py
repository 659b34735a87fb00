"""Catalog schema migrations (issue #17): new catalogs are created at head, older ones refused until
`glacier-pipelines catalog upgrade` ran, and the upgrade keeps every row; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from glacier_pipelines.catalog import Catalog, schema
from glacier_pipelines.catalog import tables as t
from glacier_pipelines_tests.integration.conftest import postgres_url  # noqa: F401  (fixture)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'catalog.sqlite'}"


def _shape(engine: sa.Engine) -> dict[str, tuple]:
    """Tables, their columns (name, nullable) and index names: what two ways of making a catalog must agree on."""
    insp = sa.inspect(engine)
    return {
        name: (sorted((c["name"], c["nullable"]) for c in insp.get_columns(name)), sorted(ix["name"] for ix in insp.get_indexes(name)))
        for name in insp.get_table_names()
        if name != schema.VERSION_TABLE
    }


def _revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return schema.revision_of(conn)[0]


def _previous_release(url: str) -> sa.Engine:
    """A catalog as releases before migrations made it: create_all, no version table; without the vault tables (created
    on first use), the dedupe index and the restores.cost column, which later releases added; then some data."""
    engine = sa.create_engine(url)
    before = set(_migration("0001_baseline").baseline().tables)
    baseline = [table for table in t.metadata.sorted_tables if table.name in before and not table.name.startswith("vault_")]
    t.metadata.create_all(engine, tables=baseline)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_requests_content"))
        conn.execute(sa.text("ALTER TABLE restores DROP COLUMN cost"))
        conn.execute(
            sa.text(
                "INSERT INTO objects (tenant, bucket, key, storage_class, size, sha256, s3_checksum, stored_at) "
                "VALUES ('lab', 'b', 'archive/lab/a', 'DEEP_ARCHIVE', 5, :sha, 'x', :now)"
            ),
            {"sha": "ab" * 32, "now": NOW},
        )
        conn.execute(
            sa.text("INSERT INTO object_checksums (object_id, algorithm, checksum) VALUES (1, 'SHA-256', :sha)"), {"sha": "ab" * 32}
        )
        for i, status in enumerate(["SUCCESS", "PENDING", "ERROR"]):
            conn.execute(
                sa.text(
                    "INSERT INTO requests (tenant, request_id, body, received_at, updated_at, status, messages, "
                    "deduplicated, object_id, algorithm, checksum) "
                    "VALUES ('lab', :rid, '{}', :now, :now, :status, '[]', false, :oid, 'SHA-256', :c)"
                ),
                {"rid": f"r{i}", "now": NOW, "status": status, "oid": 1 if status == "SUCCESS" else None, "c": f"{i:064x}"},
            )
        conn.execute(
            sa.text("INSERT INTO responses (tenant, request_id, status, body, created_at) VALUES ('lab', 'r0', 'SUCCESS', '{}', :now)"),
            {"now": NOW},
        )
        conn.execute(
            sa.text(
                "INSERT INTO restores (restore_id, tenant, selector, object_id, tier, days, requester, status, messages, "
                "requested_at, updated_at) "
                "VALUES ('x1', 'lab', 'requestId r0', 1, 'Bulk', 3, 'a@example.org', 'PENDING', '[]', :now, :now)"
            ),
            {"now": NOW},
        )
    return engine


def _migration(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, schema.MIGRATIONS / "versions" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _baseline_names() -> set[str]:
    """Every table the revisions up to HEAD create: the baseline's, then 0002's, 0003's and 0004's."""
    return (
        set(_migration("0001_baseline").baseline().tables)
        | set(_migration("0002_worker_requests").tables().tables)
        | set(_migration("0003_claims").tables().tables)
        | set(_migration("0004_tenant_storage").tables().tables)
    )


def _rows(engine: sa.Engine) -> dict[str, list[dict]]:
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return {
            name: sorted((dict(r._mapping) for r in conn.execute(sa.select(table))), key=repr)
            for name, table in meta.tables.items()
            if name != schema.VERSION_TABLE
        }


def test_head_is_the_newest_migration_and_the_baseline_covers_every_table():
    import glacier_pipelines.catalog.vault_tables  # noqa: F401  (the vault tables join tables.metadata)
    import glacier_pipelines.catalog.worker_request_tables  # noqa: F401  (likewise)

    assert schema.HEAD == schema.script_head()
    declared = {table.name for table in t.metadata.sorted_tables}
    assert _baseline_names() == declared


def test_a_new_catalog_is_created_at_head_like_the_migrations_make_it(url, tmp_path):
    catalog = Catalog(url)
    try:
        assert _revision(catalog.engine) == schema.HEAD
        made = _shape(catalog.engine)
        Catalog(url).dispose()  # opened again: at head, nothing to do and no error
    finally:
        catalog.dispose()
    if url.startswith("sqlite"):
        other = f"sqlite:///{tmp_path / 'migrated.sqlite'}"
    else:  # PostgreSQL: the same database, emptied
        other, engine = url, sa.create_engine(url)
        meta = sa.MetaData()
        meta.reflect(engine)
        meta.drop_all(engine)
        engine.dispose()
    result = schema.upgrade(other)
    assert (result.before, result.after) == (None, schema.HEAD) and "an empty database" in result.describe()
    engine = sa.create_engine(other)
    try:
        migrated = _shape(engine)
    finally:
        engine.dispose()
    assert set(migrated) == _baseline_names() and {k: made[k] for k in migrated} == migrated


def test_an_older_catalog_is_refused_then_upgraded_with_every_row(url, monkeypatch, capsys):
    from glacier_pipelines.cli import main

    engine = _previous_release(url)
    before = _rows(engine)
    assert sum(len(rows) for rows in before.values()) == 7
    with pytest.raises(schema.CatalogNeedsUpgrade, match="made by a release before schema migrations.*`glacier-pipelines catalog upgrade`"):
        Catalog(url)
    assert _revision(engine) is None and "vault_jobs" not in sa.inspect(engine).get_table_names()  # nothing was created behind our back

    monkeypatch.setenv("GLACIER_CATALOG_URL", url)
    assert main(["catalog", "upgrade"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.endswith(f"upgraded from no schema version (11 table(s) made before migrations) to revision {schema.HEAD}")
    assert out.startswith(f"catalog {schema.safe_url(url)}: ")

    after = _rows(engine)
    assert after["restores"][0]["cost"] is None  # the column added since, empty for old rows
    for name, rows in before.items():  # every row, every value (the new column aside)
        assert [{k: v for k, v in r.items() if k in rows[0]} for r in after[name]] == rows, name
    insp = sa.inspect(engine)
    assert "ix_requests_content" in {ix["name"] for ix in insp.get_indexes("requests")}
    assert {"vault_archives", "vault_jobs", "vault_parts", "vault_progress"} <= set(insp.get_table_names())
    assert _revision(engine) == schema.HEAD
    engine.dispose()

    catalog = Catalog(url)  # opens now, and finds the old rows
    try:
        assert catalog.status_counts("lab") == {"SUCCESS": 1, "PENDING": 1, "ERROR": 1}
        assert catalog.find_object("lab", "SHA-256", "ab" * 32).key == "archive/lab/a"
    finally:
        catalog.dispose()

    assert main(["catalog", "upgrade", "--json"]) == 0  # again: nothing to do
    assert json.loads(capsys.readouterr().out) | {"url": None} == {
        "url": None,
        "before": schema.HEAD,
        "after": schema.HEAD,
        "tables_before": 21,
    }


def test_an_older_or_unknown_revision_is_refused_by_name(url, monkeypatch):
    Catalog(url).dispose()
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE {schema.VERSION_TABLE} SET version_num = '9999_from_the_future'"))
        with pytest.raises(schema.CatalogTooNew, match="revision 9999_from_the_future.*later release"):
            Catalog(url)
        with pytest.raises(schema.CatalogTooNew):
            schema.upgrade(url)
        with engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE {schema.VERSION_TABLE} SET version_num = :v"), {"v": schema.HEAD})
        # This release one revision further on: the catalog at the current head must be upgraded first.
        current = schema.HEAD
        monkeypatch.setattr(schema, "HEAD", "9998_next")
        with pytest.raises(schema.CatalogNeedsUpgrade, match=f"revision {current}, this release needs 9998_next.*catalog upgrade"):
            Catalog(url)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "bad, says",
    [
        ("postgresql+nosuchdriver://u@h/db", "GLACIER_CATALOG_URL postgresql+nosuchdriver://u@h/db: not a usable database URL"),
        ("postgresql://u@h:notaport/db", "GLACIER_CATALOG_URL (not a database URL): not a usable database URL"),
    ],
)
def test_upgrade_with_a_bad_url_exits_2_with_one_line(bad, says, monkeypatch, capsys):
    from glacier_pipelines.cli import main

    monkeypatch.setenv("GLACIER_CATALOG_URL", bad)
    assert main(["catalog", "upgrade"]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.postgres
def test_upgrade_of_a_database_that_does_not_answer_exits_1_and_of_one_that_does_not_exist_exits_2(postgres_url, monkeypatch, capsys):
    """The exit-status rule: a server that does not answer is transient (1); a database that does not exist, configuration (2)."""
    from glacier_pipelines.cli import main

    monkeypatch.setenv("GLACIER_CATALOG_URL", "postgresql+psycopg2://postgres@127.0.0.1:1/none")
    assert main(["catalog", "upgrade"]) == 1
    err = capsys.readouterr().err.strip()
    assert "127.0.0.1:1/none: cannot connect" in err and "try again" in err and len(err.splitlines()) == 1
    missing = postgres_url.rsplit("/", 1)[0] + "/no_such_database_here"
    monkeypatch.setenv("GLACIER_CATALOG_URL", missing)
    assert main(["catalog", "upgrade"]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not exist" in err and "GLACIER_CATALOG_URL" in err and len(err.splitlines()) == 1


def test_upgrade_with_a_url_of_another_database_is_refused_at_settings(monkeypatch, capsys):
    from glacier_pipelines.cli import main

    monkeypatch.setenv("GLACIER_CATALOG_URL", "mysql://u:secret@h/db")
    assert main(["catalog", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert "GLACIER_CATALOG_URL: expected a URL sqlite:///PATH or postgresql" in err and "secret" not in err


def test_processes_opening_a_new_catalog_at_once_all_find_it_at_head(url, monkeypatch):
    """The daemon, the webserver and runs may open a new catalog together: one creates it, none is refused (without the
    lock, the others saw tables without a version while the first was still creating them: CatalogNeedsUpgrade)."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    create_all = t.metadata.create_all

    def slow_create_all(*args, **kwargs):  # widens the window between the tables and their version
        create_all(*args, **kwargs)
        time.sleep(0.3)

    monkeypatch.setattr(t.metadata, "create_all", slow_create_all)

    def open_it(_):
        catalog = Catalog(url)
        catalog.dispose()
        return True

    with ThreadPoolExecutor(6) as pool:
        assert all(pool.map(open_it, range(6)))
    engine = sa.create_engine(url)
    try:
        assert _revision(engine) == schema.HEAD and set(_shape(engine)) >= _baseline_names() - {
            n for n in _baseline_names() if n.startswith("vault_")
        }
    finally:
        engine.dispose()
