from __future__ import annotations

import os
import uuid

import pytest

from glacier_pipelines_tests.conftest import require_services

DEFAULT_POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    import sqlalchemy as sa

    base = os.environ.get("GLACIER_TEST_POSTGRES_URL", DEFAULT_POSTGRES)
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    name = f"glacier_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        if require_services():
            pytest.fail(f"PostgreSQL is required (GLACIER_REQUIRE_SERVICES=1) but unreachable at {base}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {base}; set GLACIER_TEST_POSTGRES_URL to run this test")
    url = sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)
    yield url
    from glacier_pipelines.resources.archive import _catalogs

    if url in _catalogs:
        _catalogs.pop(url).dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
