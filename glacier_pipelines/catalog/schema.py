"""The catalog's schema version (Alembic): a new database is created at the newest revision, an older catalog is refused
until ``glacier-pipelines catalog upgrade`` has run, and that upgrade itself.

Revisions live in ``catalog/migrations/versions``. ``ensure`` runs when a Catalog is opened: it never changes the
schema of a catalog that has one, so a release never half-migrates a production catalog behind the operator's back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog import vault_tables, worker_request_tables
from glacier_pipelines.catalog.errors import CatalogConfigError, CatalogUnavailable, is_permanent_connect_error

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "0004_tenant_storage"  # the newest revision under migrations/versions (a test holds the two together)
UPGRADE_COMMAND = "glacier-pipelines catalog upgrade"
# Alembic's version table under a name of our own: Dagster's PostgreSQL storage keeps its own ``alembic_version``,
# and the two may share one database.
VERSION_TABLE = "glacier_catalog_version"
_version = sa.Table(VERSION_TABLE, sa.MetaData(), sa.Column("version_num", sa.String(32), primary_key=True))


class CatalogNeedsUpgrade(ValueError):
    """The catalog was made by an earlier release: its schema must be upgraded before this release uses it."""


class CatalogTooNew(ValueError):
    """The catalog was upgraded by a later release than this one."""


@dataclass(frozen=True)
class UpgradeResult:
    url: str  # without its password
    before: str | None  # None: no schema version (an empty database, or a catalog made before migrations)
    after: str
    tables_before: int

    def describe(self) -> str:
        if self.before == self.after:
            return f"catalog {self.url}: already at revision {self.after}, nothing to do"
        start = (
            f"revision {self.before}"
            if self.before
            else f"no schema version ({self.tables_before} table(s) made before migrations)"
            if self.tables_before
            else "an empty database"
        )
        return f"catalog {self.url}: upgraded from {start} to revision {self.after}"


def safe_url(url: str | sa.URL) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return "(not a database URL)"


# Every module that declares tables: each adds its own to ``tables.metadata`` when imported.
TABLE_MODULES = (t, vault_tables, worker_request_tables)


def _catalog_table_names() -> set[str]:
    return {table.name for table in t.metadata.sorted_tables}


def revision_of(conn: sa.Connection) -> tuple[str | None, set[str]]:
    """(the schema revision or None, the names of the tables present)."""
    names = set(sa.inspect(conn).get_table_names())
    if VERSION_TABLE not in names:
        return None, names
    return conn.execute(sa.select(_version.c.version_num)).scalar(), names


def check(conn: sa.Connection, url: str | sa.URL) -> bool:
    """True when the database is empty (nothing of a catalog yet); raises unless the schema is at HEAD."""
    revision, names = revision_of(conn)
    if revision == HEAD:
        return False
    how = f"stop the pipelines, back the catalog up, then run `{UPGRADE_COMMAND}` with GLACIER_CATALOG_URL set to it"
    if revision is not None:
        if revision in _older_revisions():
            raise CatalogNeedsUpgrade(f"the catalog at {safe_url(url)} has schema revision {revision}, this release needs {HEAD}: {how}")
        raise CatalogTooNew(
            f"the catalog at {safe_url(url)} has schema revision {revision}, which this release does not know "
            f"(it needs {HEAD}): it was upgraded by a later release; run that release"
        )
    present = sorted(names & _catalog_table_names())
    if present or VERSION_TABLE in names:
        raise CatalogNeedsUpgrade(
            f"the catalog at {safe_url(url)} was made by a release before schema migrations "
            f"(tables {', '.join(present[:4])}{', ...' if len(present) > 4 else ''}; no {VERSION_TABLE}): {how}"
        )
    return True


def ensure(engine: sa.Engine) -> None:
    """At first use of an empty database, create every table and record HEAD; otherwise only check the revision.

    Several processes may open a new catalog at once (daemon, webserver, runs): the check and the creation happen
    under one lock, so none of them sees tables without their version and mistakes them for an old catalog.
    """
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        # pysqlite runs DDL outside any transaction: a connection of our own, in a real BEGIN IMMEDIATE transaction.
        locked = sa.create_engine(engine.url, connect_args={"timeout": 30}, poolclass=sa.pool.NullPool)
        sa.event.listen(locked, "connect", _driver_autocommit)
        sa.event.listen(locked, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        try:
            _ensure(locked)
        finally:
            locked.dispose()
    else:
        _ensure(engine)


def _driver_autocommit(dbapi_conn, _record) -> None:  # noqa: ANN001 (DBAPI objects)
    dbapi_conn.isolation_level = None  # the driver begins nothing by itself: SQLAlchemy's BEGIN IMMEDIATE does


def _ensure(engine: sa.Engine) -> None:
    url = engine.url
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # two processes opening a new catalog at once: one creates, the other waits
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7170172)"))
        if not check(conn, url):
            return
        t.metadata.create_all(conn)  # every table of TABLE_MODULES
        _version.create(conn)
        conn.execute(_version.insert().values(version_num=HEAD))


def _config(connection: sa.Connection | None = None):  # -> alembic.config.Config (imported only when migrating)
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def script_head() -> str:
    """The newest revision of the migration scripts."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration scripts under {MIGRATIONS}: the package is incomplete")
    return head


def _older_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions()} - {HEAD}


def upgrade(url: str) -> UpgradeResult:
    """``alembic upgrade head`` against ``url``: an empty database gets every table, an older catalog what it lacks.

    A bad URL, or a database or role that does not exist, raises ValueError with one line (a configuration
    fault); a database that does not answer, CatalogUnavailable (a transient one).
    """
    from alembic import command

    shown = safe_url(url)
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, ImportError, ValueError) as exc:
        raise ValueError(f"GLACIER_CATALOG_URL {shown}: not a usable database URL ({exc})") from None
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7170172)"))
            before, names = revision_of(conn)
            if before is not None and before != HEAD and before not in _older_revisions():
                raise CatalogTooNew(
                    f"the catalog at {shown} has schema revision {before}, which this release does not know: "
                    "it was upgraded by a later release"
                )
            command.upgrade(_config(conn), "head")
            after, _ = revision_of(conn)
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        if is_permanent_connect_error(exc):  # no wait can fix it: the setting must change (exit 2)
            raise CatalogConfigError(f"catalog {shown}: cannot connect: {reason} (fix GLACIER_CATALOG_URL)") from None
        raise CatalogUnavailable(f"catalog {shown}: cannot connect: {reason}; try again once it answers") from None  # exit 1
    finally:
        engine.dispose()
    return UpgradeResult(url=shown, before=before, after=after or HEAD, tables_before=len(names & _catalog_table_names()))
