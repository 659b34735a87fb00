"""What every catalog store shares: the catalog's engine, its retried transactions, UTC times, and the clock.

A store is a small class over one :class:`~glacier_pipelines.catalog.store.Catalog` that holds the
queries of one concern and returns typed rows (dataclasses or named tuples), never SQLAlchemy rows
or dicts. Reads use :meth:`CatalogStore.reading`; writes go through :meth:`CatalogStore.transaction`,
which retries a transaction the database refused for a moment (locked, connection lost).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.engine import Connection

from glacier_pipelines.catalog.rows import _now

if TYPE_CHECKING:
    from glacier_pipelines.catalog.store import Catalog

T = TypeVar("T")


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without a zone; everything the catalog stores is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class CatalogStore:
    """The base of a store: ``catalog`` and ``engine``, reads, retried transactions, ``now()``."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.engine = catalog.engine

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """One connection for a group of reads (they see one database, not one per query)."""
        with self.engine.connect() as conn:
            yield conn

    def transaction(self, work: Callable[[Connection], T]) -> T:
        """Run ``work(conn)`` in one transaction, retried as a whole when the database was briefly unavailable."""

        def tx() -> T:
            with self.engine.begin() as conn:
                return work(conn)

        return self.catalog._with_retry(tx)

    @staticmethod
    def now() -> datetime:
        """The clock every row's timestamps come from (UTC)."""
        return _now()
