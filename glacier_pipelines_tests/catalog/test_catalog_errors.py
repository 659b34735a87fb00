"""Catalog connection faults: permanent ones fail at once with one clear line, transient ones wait once, boundedly."""

from __future__ import annotations

import os
import time
import uuid

import pytest
import sqlalchemy as sa

from glacier_pipelines.catalog.errors import CatalogConfigError, CatalogUnavailable, is_permanent_connect_error, masked_url
from glacier_pipelines.catalog.store import Catalog

BASE = os.environ.get("GLACIER_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


def _with(url: str, **parts: str) -> str:
    return sa.engine.make_url(url).set(**parts).render_as_string(hide_password=False)


@pytest.fixture
def server():
    """The test PostgreSQL server must answer: these tests fail rather than skip without it."""
    engine = sa.create_engine(BASE)
    with engine.connect() as conn:
        conn.execute(sa.text("select 1"))
    engine.dispose()
    return BASE


@pytest.mark.postgres
@pytest.mark.parametrize("part, says", [("database", "does not exist"), ("username", "does not exist")])
def test_a_database_or_role_that_does_not_exist_fails_in_under_2_s_with_one_clear_line(server, part, says):
    missing = f"nosuch_{uuid.uuid4().hex[:8]}"
    url = _with(server, **{part: missing, "password": "pw-secret"})
    started = time.monotonic()
    with pytest.raises(CatalogConfigError) as info:
        Catalog(url)
    assert time.monotonic() - started < 2.0
    message = str(info.value)
    assert isinstance(info.value, ValueError) and "\n" not in message
    assert f'"{missing}" {says}' in message and "(fix GLACIER_CATALOG_URL)" in message
    assert "pw-secret" not in message and "***" in message


@pytest.mark.postgres
def test_the_console_script_says_it_in_one_line_with_exit_2(server, archive, monkeypatch, capsys):
    from glacier_pipelines.cli import main

    monkeypatch.setenv("GLACIER_CATALOG_URL", _with(server, database="nosuch_catalog_db", password="pw-secret"))
    started = time.monotonic()
    assert main(["report"]) == 2
    assert time.monotonic() - started < 5.0  # no retry: the settings, the engine and one refused connect
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'database "nosuch_catalog_db" does not exist' in err[0] and "pw-secret" not in err[0]
    assert "GLACIER_CATALOG_URL" in err[0]


@pytest.mark.slow
def test_an_unreachable_server_is_retried_once_boundedly_then_exit_1(archive, monkeypatch, capsys):
    from glacier_pipelines.cli import main

    url = "postgresql+psycopg2://postgres:pw-secret@127.0.0.1:1/test"
    started = time.monotonic()
    with pytest.raises(CatalogUnavailable) as info:
        Catalog(url)
    elapsed = time.monotonic() - started
    assert 3.0 < elapsed < 9.0, elapsed  # one loop of about 5 s, not two nested ones (about 30 s)
    assert "is unreachable" in str(info.value) and "pw-secret" not in str(info.value)
    monkeypatch.setenv("GLACIER_CATALOG_URL", url)
    assert main(["report"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is unreachable" in err[0] and "try again" in err[0]


@pytest.mark.parametrize(
    "url", ["postgresql+nosuchdriver://u:pw-secret@h/db", "nosuchdialect://u:pw-secret@h/db", "postgresql://u:pw-secret@h:notaport/db"]
)
def test_a_malformed_url_or_unknown_dialect_is_a_config_error_at_once(url):
    started = time.monotonic()
    with pytest.raises(CatalogConfigError, match="GLACIER_CATALOG_URL") as info:
        Catalog(url)
    assert time.monotonic() - started < 1.0 and "pw-secret" not in str(info.value)


def test_permanent_and_transient_messages_are_told_apart():
    assert is_permanent_connect_error(Exception('FATAL:  password authentication failed for user "x"'))
    assert is_permanent_connect_error(Exception('FATAL:  database "x" does not exist'))
    assert not is_permanent_connect_error(Exception('connection to server at "h", port 5432 failed: Connection refused'))
    assert not is_permanent_connect_error(Exception("server closed the connection unexpectedly"))
    assert not is_permanent_connect_error(Exception("timeout expired"))
    assert masked_url("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"


def test_a_lost_connection_during_connect_is_not_retried_again_by_with_retry():
    calls = []

    def connect_failure():
        calls.append(1)
        raise sa.exc.OperationalError(None, None, Exception("connection refused"))

    with pytest.raises(sa.exc.OperationalError):
        Catalog._with_retry(connect_failure)
    assert len(calls) == 1

    def locked_then_ok():
        calls.append(2)
        if calls.count(2) < 3:
            raise sa.exc.OperationalError("UPDATE requests", {}, Exception("database is locked"))
        return "done"

    assert Catalog._with_retry(locked_then_ok) == "done" and calls.count(2) == 3
