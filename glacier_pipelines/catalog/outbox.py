"""The response outbox: one terminal response per request (and at most one DELAYED before it), published later."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.rows import _now
from glacier_pipelines.core import responses

# Built once (see store.py on why): is there already a response of this kind for the request?
_RESPONSE_EXISTS = {
    kind: sa.select(t.responses.c.id)
    .where(
        t.responses.c.tenant == sa.bindparam("tenant"),
        t.responses.c.request_id == sa.bindparam("request_id"),
        t.responses.c.status.in_(statuses),
    )
    .limit(1)
    for kind, statuses in (("delayed", (t.DELAYED,)), ("terminal", t.TERMINAL))
}


def retire_answers(conn: Any, tenant: str, request_id: str) -> int:
    """A request attempted again: its earlier responses stay as history under a numbered status (``ERROR-1``...),
    so that one current answer per status can follow. Returns the number of the attempt they belonged to."""
    out = t.responses
    mine = sa.and_(out.c.tenant == tenant, out.c.request_id == request_id)
    attempt = 1 + conn.execute(sa.select(sa.func.count()).where(mine, out.c.status.like("%-%"))).scalar()
    for status in (t.DELAYED, *t.TERMINAL):
        conn.execute(out.update().where(mine, out.c.status == status).values(status=f"{status}-{attempt}"))
    return attempt


class Outbox:
    """Part of Catalog (see store.py): responses queued in the transaction of their status, published by intake."""

    if TYPE_CHECKING:  # provided by Catalog (store.py), which is built from these parts
        engine: sa.engine.Engine

        @staticmethod
        def _with_retry(fn: Any, attempts: int = 5) -> Any: ...

    @staticmethod
    def _enqueue_response(
        conn: Any, tenant: str, request_id: str, status: str, messages: list[str], content: dict[str, Any] | None
    ) -> None:
        body = responses.response_body(request_id, status, messages, content)
        exists = conn.execute(
            _RESPONSE_EXISTS["delayed" if status == t.DELAYED else "terminal"], {"tenant": tenant, "request_id": request_id}
        ).first()
        if exists is None:  # exactly one terminal response per request id (and at most one DELAYED before it)
            conn.execute(
                t.responses.insert(), {"tenant": tenant, "request_id": request_id, "status": status, "body": body, "created_at": _now()}
            )

    @staticmethod
    def _enqueue_responses(conn: Any, items: Sequence[tuple[str, str, str, list[str], dict[str, Any] | None]]) -> None:
        """``_enqueue_response`` for many requests of one status, with one lookup per 500 and one insert."""
        by_status: dict[str, list[tuple[str, str, list[str], dict[str, Any] | None]]] = {}
        for tenant, request_id, status, messages, content in items:
            by_status.setdefault(status, []).append((tenant, request_id, messages, content))
        now = _now()
        for status, group in by_status.items():
            same_kind = (status,) if status == t.DELAYED else t.TERMINAL
            answered: set[tuple[str, str]] = set()
            for start in range(0, len(group), 500):
                ids = list({request_id for _, request_id, _, _ in group[start : start + 500]})
                answered |= set(
                    tuple(r)
                    for r in conn.execute(
                        sa.select(t.responses.c.tenant, t.responses.c.request_id).where(
                            t.responses.c.request_id.in_(ids), t.responses.c.status.in_(same_kind)
                        )
                    )
                )
            rows = []
            for tenant, request_id, messages, content in group:
                if (tenant, request_id) not in answered:
                    answered.add((tenant, request_id))
                    rows.append(
                        {
                            "tenant": tenant,
                            "request_id": request_id,
                            "status": status,
                            "created_at": now,
                            "body": responses.response_body(request_id, status, messages, content),
                        }
                    )
            if rows:
                conn.execute(t.responses.insert(), rows)

    def unpublished_responses(self, limit: int = 1000) -> list[dict[str, Any]]:
        q = sa.select(t.responses).where(t.responses.c.published_at.is_(None)).order_by(t.responses.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def mark_published(self, ids: Sequence[int]) -> None:
        if not ids:
            return

        def tx() -> None:
            with self.engine.begin() as conn:
                conn.execute(t.responses.update().where(t.responses.c.id.in_(list(ids))).values(published_at=_now()))

        self._with_retry(tx)

    def response_for(self, tenant: str, request_id: str) -> dict[str, Any] | None:
        """The terminal response of a request, if any."""
        q = sa.select(t.responses.c.body).where(
            t.responses.c.tenant == tenant, t.responses.c.request_id == request_id, t.responses.c.status.in_(t.TERMINAL)
        )
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()
