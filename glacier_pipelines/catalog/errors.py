"""Catalog connection faults told apart: a permanent one (fix GLACIER_CATALOG_URL) from a transient one (retry).

A database or role that does not exist, refused credentials, a malformed URL or an unknown dialect
cannot heal by waiting: they raise :class:`CatalogConfigError` at once. A refused connection, a
timeout or a server closing the connection may heal: the caller retries a bounded number of times.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["CatalogConfigError", "CatalogUnavailable", "is_permanent_connect_error", "masked_url"]

SETTING = "GLACIER_CATALOG_URL"

# Fragments of the server's or driver's message that no retry can change (psycopg2 and psycopg 3 wording).
_PERMANENT = (
    "does not exist",  # FATAL: database "x" does not exist / role "x" does not exist
    "authentication failed",  # password authentication failed for user "x"
    "no password supplied",
    "password is not set",
    "invalid dsn",
    "invalid connection option",
    "invalid sslmode",
    "no pg_hba.conf entry",
    "is not permitted to log in",
    "permission denied for database",
)


class CatalogConfigError(ValueError):
    """The catalog's URL cannot work as configured; the message names GLACIER_CATALOG_URL (password masked)."""


class CatalogUnavailable(Exception):
    """The catalog's database could not be reached after a bounded wait: a transient fault, try again later."""


def masked_url(url: str) -> str:
    """The URL with its password replaced by ``***``."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot even parse is shown by its scheme only
        return (url.split(":", 1)[0] + "://...") if ":" in url else "<unparseable URL>"


def is_permanent_connect_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(fragment in text for fragment in _PERMANENT)


def first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    # psycopg2 prefixes the server's words with 'connection to server at ... failed:'; keep the FATAL line if there is one
    fatal = [line for line in lines if line.upper().startswith("FATAL")]
    return (fatal or lines or [type(exc).__name__])[0][:300]


def config_error(url: str, exc: BaseException) -> CatalogConfigError:
    return CatalogConfigError(f"the catalog at {masked_url(url)} refuses the connection for good: {first_line(exc)} (fix {SETTING})")
