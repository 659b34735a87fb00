"""What restored_checksum_integrity reads: the verdict on each restored object's bytes, per run."""

from __future__ import annotations

from typing import NamedTuple

import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.base import CatalogStore


class RestoredVerification(NamedTuple):
    """A restored object whose bytes were re-hashed: whether they matched the catalog, and why not."""

    bucket: str
    key: str
    verified: bool
    message: str | None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class VerificationQueries(CatalogStore):
    def restored_by_run(self, run_id: str) -> list[RestoredVerification]:
        """Objects that restores of ``run_id`` delivered or refused and whose restored bytes have a verdict."""
        s, r, o = t.object_restores, t.restores, t.objects
        q = (
            sa.select(o.c.bucket, o.c.key, s.c.verified, s.c.verify_message)
            .join(s, s.c.object_id == o.c.id)
            .where(o.c.id.in_(sa.select(r.c.object_id).where(r.c.run_id == run_id)))
            .where(s.c.verified.is_not(None))
            .order_by(o.c.id)
        )
        with self.reading() as conn:
            return [RestoredVerification(b, k, bool(ok), m) for b, k, ok, m in conn.execute(q)]
