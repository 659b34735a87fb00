"""Catalog queries of batches: claims of pending requests, and which batches a run may work on."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.rows import RequestRow, _now, _request_row


class BatchQueries:
    """Part of Catalog (see store.py): batches claimed, adopted and taken over."""

    if TYPE_CHECKING:  # provided by Catalog (store.py), which is built from these parts
        engine: sa.engine.Engine

        @staticmethod
        def _with_retry(fn: Any, attempts: int = 5) -> Any: ...

    def batch_runs_in_flight(self, tenant: str) -> dict[str, str]:
        """batch id -> run id for batches of ``tenant`` that still hold unfinished requests."""
        q = (
            sa.select(t.batches.c.id, t.batches.c.run_id)
            .join(t.requests, t.requests.c.batch_id == t.batches.c.id)
            .where(t.batches.c.tenant == tenant, t.requests.c.status.in_((t.CLAIMED, t.VERIFIED, t.STORED)))
            .distinct()
        )
        with self.engine.connect() as conn:
            return {r[0]: r[1] for r in conn.execute(q)}

    def claim_batch(self, tenant: str, run_id: str, limit: int, adopt_batches: Iterable[str] = ()) -> tuple[str, int]:
        """Move up to ``limit`` pending requests (plus unfinished ones of abandoned batches) into a new batch."""
        adopt = list(adopt_batches)
        batch_id = str(uuid.uuid4())

        def tx() -> int:
            with self.engine.begin() as conn:
                conn.execute(t.batches.insert().values(id=batch_id, tenant=tenant, run_id=run_id, created_at=_now(), request_count=0))
                ids = [
                    r[0]
                    for r in conn.execute(
                        sa.select(t.requests.c.id)
                        .where(t.requests.c.tenant == tenant, t.requests.c.status == t.PENDING)
                        .order_by(t.requests.c.id)
                        .limit(limit)
                    )
                ]
                claimed = 0
                if ids:
                    claimed += conn.execute(
                        t.requests.update()
                        .where(t.requests.c.id.in_(ids), t.requests.c.status == t.PENDING)
                        .values(status=t.CLAIMED, batch_id=batch_id, updated_at=_now(), run_id=run_id)
                    ).rowcount
                if adopt:
                    claimed += conn.execute(
                        t.requests.update()
                        .where(
                            t.requests.c.tenant == tenant,
                            t.requests.c.batch_id.in_(adopt),
                            t.requests.c.status.in_((t.CLAIMED, t.VERIFIED)),
                        )
                        .values(batch_id=batch_id, updated_at=_now(), run_id=run_id)
                    ).rowcount
                conn.execute(t.batches.update().where(t.batches.c.id == batch_id).values(request_count=claimed))
                return claimed

        return batch_id, self._with_retry(tx)

    def batch_for_run(self, run_id: str) -> str | None:
        q = sa.select(t.batches.c.id).where(t.batches.c.run_id == run_id).order_by(t.batches.c.created_at.desc()).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    def batch_requests(
        self, batch_id: str, statuses: Sequence[str] | None = None, *, stage_kind: str | None = None, not_stage_kind: str | None = None
    ) -> list[RequestRow]:
        """The batch's requests, in order; ``stage_kind``/``not_stage_kind`` filter on their stage's kind in SQL,
        so that a step never decodes the thousands of rows it would skip (package members, for store_batch)."""
        q = sa.select(t.requests).where(t.requests.c.batch_id == batch_id).order_by(t.requests.c.id)
        if statuses:
            q = q.where(t.requests.c.status.in_(statuses))
        kind = sa.func.coalesce(t.requests.c.stage["kind"].as_string(), "")
        if stage_kind is not None:
            q = q.where(kind == stage_kind)
        if not_stage_kind is not None:
            q = q.where(kind != not_stage_kind)
        with self.engine.connect() as conn:
            return [_request_row(r) for r in conn.execute(q)]

    def get_request(self, tenant: str, request_id: str) -> RequestRow | None:
        q = sa.select(t.requests).where(t.requests.c.tenant == tenant, t.requests.c.request_id == request_id)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return _request_row(row) if row else None

    def take_batches(self, tenant: str, run_id: str, statuses: Sequence[str], run_finished: Any) -> list[str]:
        """The tenant's batches holding requests in ``statuses`` that this run may work on, oldest first.

        A batch is this run's when it claimed it, or once its owner's run is over: it is then
        taken over with a conditional update, so two runs never work on one batch.
        """
        q = (
            sa.select(t.batches.c.id, t.batches.c.run_id, sa.func.min(t.batches.c.created_at))
            .join(t.requests, t.requests.c.batch_id == t.batches.c.id)
            .where(t.batches.c.tenant == tenant, t.requests.c.status.in_(list(statuses)))
            .group_by(t.batches.c.id, t.batches.c.run_id)
            .order_by(sa.func.min(t.batches.c.created_at))
        )
        with self.engine.connect() as conn:
            found = [(b, owner) for b, owner, _ in conn.execute(q)]
        mine = []
        for batch_id, owner in found:
            if owner == run_id:
                mine.append(batch_id)
            elif run_finished(owner):

                def tx(batch_id: str = batch_id, owner: str = owner) -> int:
                    with self.engine.begin() as conn:
                        return conn.execute(
                            t.batches.update().where(t.batches.c.id == batch_id, t.batches.c.run_id == owner).values(run_id=run_id)
                        ).rowcount

                if self._with_retry(tx) == 1:
                    mine.append(batch_id)
        return mine
