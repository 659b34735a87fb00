"""Alembic environment of the catalog: run by ``glacier-pipelines catalog upgrade`` (catalog/schema.py), never by hand-set URLs.

schema.py passes an open connection in ``config.attributes["connection"]``; with ``alembic -x url=...``
(a developer writing a revision) the URL given is used instead.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from glacier_pipelines.catalog import tables
from glacier_pipelines.catalog.schema import VERSION_TABLE

target_metadata = tables.metadata


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("give the catalog URL: alembic -x url=postgresql+psycopg2://... upgrade head")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
