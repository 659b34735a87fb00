"""Catalog queries of the blocking check checksum_integrity: what waits for it, and its answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.rows import RequestRow, StoredObject, _now, _object, _request_row


class CheckAnswers:
    """Part of Catalog (see store.py): STORED requests answered once the check read their object back."""

    if TYPE_CHECKING:  # provided by Catalog (store.py), which is built from these parts
        engine: sa.engine.Engine

        @staticmethod
        def _flag(conn: Any, object_id: int, reason: str, member: str = "") -> None: ...

        @staticmethod
        def _enqueue_response(
            conn: Any, tenant: str, request_id: str, status: str, messages: list[str], content: dict[str, Any] | None
        ) -> None: ...

        @staticmethod
        def _with_retry(fn: Any, attempts: int = 5) -> Any: ...

    def awaiting_check(self, tenant: str | None) -> list[tuple[StoredObject, list[RequestRow]]]:
        """STORED requests of ``tenant`` (None: every tenant) grouped by the object they point at: what checksum_integrity reads back."""
        q = sa.select(t.requests).where(t.requests.c.status == t.STORED).order_by(t.requests.c.object_id, t.requests.c.id)
        if tenant is not None:
            q = q.where(t.requests.c.tenant == tenant)
        with self.engine.connect() as conn:
            rows = [_request_row(r) for r in conn.execute(q)]
            ids = sorted({r.object_id for r in rows if r.object_id is not None})
            objects = (
                {o.id: o for o in (_object(x) for x in conn.execute(sa.select(t.objects).where(t.objects.c.id.in_(ids))))} if ids else {}
            )
        grouped: dict[int, list[RequestRow]] = {}
        for row in rows:
            grouped.setdefault(row.object_id or 0, []).append(row)
        return [(objects[oid], group) for oid, group in grouped.items() if oid in objects]

    def answer_checked(self, verdicts: dict[int, list[str]], check: str) -> dict[str, int]:
        """Answer the STORED requests of checked objects: SUCCESS when the object's check found no problem, else ERROR.

        A failed object is flagged (never offered again for deduplication or restore) and its
        requests end ERROR with the check's reason, in the same transaction as their responses.
        Returns how many requests were answered each way.
        """

        def tx() -> dict[str, int]:
            counts = {t.SUCCESS: 0, t.ERROR: 0}
            with self.engine.begin() as conn:
                for object_id, problems in verdicts.items():
                    rows = [
                        _request_row(r)
                        for r in conn.execute(
                            sa.select(t.requests).where(t.requests.c.object_id == object_id, t.requests.c.status == t.STORED)
                        )
                    ]
                    if problems:
                        reason = f"{check} failed: " + "; ".join(problems)
                        self._flag(conn, object_id, reason)
                    for row in rows:
                        content = (row.stage or {}).get("content")
                        status, messages = (t.ERROR, row.messages + [reason]) if problems else (t.SUCCESS, row.messages)
                        conn.execute(
                            t.requests.update()
                            .where(t.requests.c.id == row.pk, t.requests.c.status == t.STORED)
                            .values(status=status, stage=None, messages=messages, updated_at=_now())
                        )
                        self._enqueue_response(conn, row.tenant, row.request_id, status, messages, None if problems else content)
                        counts[status] += 1
            return counts

        return self._with_retry(tx)
