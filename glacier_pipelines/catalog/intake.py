"""Catalog queries of intake: received messages persisted idempotently, a resend after ERROR attempted again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.outbox import retire_answers
from glacier_pipelines.catalog.rows import _now
from glacier_pipelines.core.requests import ParsedRequest


class IntakeQueries:
    """Part of Catalog (see store.py): what intake records."""

    if TYPE_CHECKING:  # provided by Catalog (store.py), which is built from these parts
        engine: sa.engine.Engine

        @staticmethod
        def _enqueue_response(
            conn: Any, tenant: str, request_id: str, status: str, messages: list[str], content: dict[str, Any] | None
        ) -> None: ...

        @staticmethod
        def _enqueue_responses(conn: Any, items: Sequence[tuple[str, str, str, list[str], dict[str, Any] | None]]) -> None: ...

        @staticmethod
        def _with_retry(fn: Any, attempts: int = 5) -> Any: ...

    def record_request(self, parsed: ParsedRequest, *, fallback_id: str) -> str:
        """Persist one received message idempotently; returns 'new', 'duplicate' or 'invalid'."""
        return self.record_requests([(parsed, fallback_id)])[0]

    def record_requests(self, items: Sequence[tuple[ParsedRequest, str]]) -> list[str]:
        """Persist received messages in one transaction; for each, 'new', 'retried', 'duplicate' or 'invalid'.

        A request already known by ``(tenant, requestId)`` is a duplicate (redelivery or resend)
        and changes nothing, unless its last answer was ERROR or INVALID_CONTENT and the resend is
        valid: then it is attempted again ('retried') and answered again. An invalid message is
        recorded as terminal ``INVALID_CONTENT`` with its response in the outbox; one without a
        usable tenant or request id is filed under its ``fallback_id``.
        """
        now = _now()
        rows: list[dict[str, Any]] = []
        for parsed, fallback_id in items:
            tenant = parsed.envelope.tenant if parsed.envelope else (parsed.tenant or "")
            request_id = parsed.envelope.requestId if parsed.envelope else (parsed.request_id or fallback_id)
            rows.append(
                {
                    "tenant": tenant[:64],
                    "request_id": request_id[:255],
                    "owner": parsed.owner,
                    "session": parsed.session,
                    "body": parsed.request.model_dump() if parsed.request else parsed.body,
                    "received_at": now,
                    "updated_at": now,
                    "status": t.PENDING if parsed.valid else t.INVALID_CONTENT,
                    "messages": parsed.errors,
                    "algorithm": parsed.request.algorithm if parsed.request else None,
                    "checksum": parsed.request.checksum if parsed.request else None,
                    "deduplicated": False,
                }
            )
        insert = self._insert_ignoring_duplicates(t.requests, ["tenant", "request_id"])

        def tx() -> list[str]:
            outcomes: list[str] = []
            with self.engine.begin() as conn:
                inserted = self._insert_unseen(conn, insert, rows)
                invalid = []
                for (parsed, _), row in zip(items, rows):
                    key = (row["tenant"], row["request_id"])
                    if key in inserted:
                        inserted.discard(key)  # the first of the batch to carry this key is the one inserted
                        outcomes.append("new" if parsed.valid else "invalid")
                        if not parsed.valid:
                            invalid.append((row["tenant"], row["request_id"], t.INVALID_CONTENT, parsed.errors, None))
                        continue
                    self._enqueue_responses(conn, invalid)  # answered before a resend further on may retire the answer
                    invalid.clear()
                    if conn.execute(insert, row).rowcount == 0:
                        outcomes.append("retried" if parsed.valid and self._attempt_again(conn, row) else "duplicate")
                    elif parsed.valid:
                        outcomes.append("new")
                    else:
                        self._enqueue_response(conn, row["tenant"], row["request_id"], t.INVALID_CONTENT, parsed.errors, None)
                        outcomes.append("invalid")
                self._enqueue_responses(conn, invalid)
            return outcomes

        return self._with_retry(tx)

    @staticmethod
    def _attempt_again(conn: Any, row: dict[str, Any]) -> bool:
        """A valid resend of a request whose last answer was ERROR or INVALID_CONTENT: back to PENDING, to be answered again.

        Its earlier responses stay in the outbox (published or about to be) under a numbered
        status (``ERROR-1``...), so that exactly one current answer per status is kept.
        """
        r = t.requests
        known = conn.execute(
            sa.select(r.c.id, r.c.status, r.c.messages).where(r.c.tenant == row["tenant"], r.c.request_id == row["request_id"])
        ).first()
        if known is None or known.status not in (t.ERROR, t.INVALID_CONTENT):
            return False
        attempt = retire_answers(conn, row["tenant"], row["request_id"])
        conn.execute(t.package_members.delete().where(t.package_members.c.request_pk == known.id))  # a failed package's member row
        previous = "; ".join(known.messages or [])[:500]
        conn.execute(
            r.update()
            .where(r.c.id == known.id)
            .values(
                status=t.PENDING,
                body=row["body"],
                algorithm=row["algorithm"],
                checksum=row["checksum"],
                owner=row["owner"],
                session=row["session"],
                updated_at=row["updated_at"],
                batch_id=None,
                object_id=None,
                stage=None,
                deduplicated=False,
                size=None,
                width=None,
                height=None,
                run_id=None,
                messages=[f"sent again after its answer {known.status} ({previous}): attempt {attempt + 1}"],
            )
        )
        return True

    def _insert_unseen(self, conn: Any, insert: Any, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
        """Insert in one statement the batch's rows whose key the catalog does not hold yet; returns the keys inserted.

        One INSERT per message was most of recording a large batch. The statement still ignores a
        key another transaction inserted meanwhile, and RETURNING names the rows really inserted:
        any other row takes the one-row path (duplicate, resend after an error) in ``record_requests``.
        Without INSERT ... RETURNING for many rows (SQLite older than 3.35) every row takes that path.
        """
        if len(rows) < 2 or not self.engine.dialect.insert_executemany_returning:
            return set()
        r = t.requests.c
        known: set[tuple[str, str]] = set()
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            for tenant in {row["tenant"] for row in chunk}:
                ids = list({row["request_id"] for row in chunk if row["tenant"] == tenant})
                known |= {
                    (tenant, rid) for (rid,) in conn.execute(sa.select(r.request_id).where(r.tenant == tenant, r.request_id.in_(ids)))
                }
        unseen: dict[tuple[str, str], dict[str, Any]] = {}
        for row in rows:
            key = (row["tenant"], row["request_id"])
            if key not in known:
                unseen.setdefault(key, row)  # a key twice in the batch: the second is a duplicate of the first
        if not unseen:
            return set()
        returned = conn.execute(insert.returning(r.tenant, r.request_id), list(unseen.values()))
        return {(tenant, request_id) for tenant, request_id in returned}

    def _insert_ignoring_duplicates(self, table: sa.Table, keys: list[str]) -> Any:
        """INSERT ... ON CONFLICT DO NOTHING in the dialect at hand (rowcount 0 means it existed)."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif self.engine.dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]  # same API as the postgresql one
        else:
            raise NotImplementedError(f"catalog on {self.engine.dialect.name} is not supported; use SQLite or PostgreSQL")
        return insert(table).on_conflict_do_nothing(index_elements=keys)
