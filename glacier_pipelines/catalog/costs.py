"""What the cost report reads: bytes held per tenant (archived, staged, restored copies) and restores' estimates.

The arithmetic (what those bytes cost) is the pricing model's; this module only counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.base import CatalogStore
from glacier_pipelines.catalog.restores import live_member_copies

# Restores whose estimate counts: requested and not refused or failed.
COSTED_RESTORES = ("PENDING", "IN_PROGRESS", "READY", "EXPIRED")


class Held(NamedTuple):
    """Bytes a tenant keeps in one storage class: ``objects`` objects totalling ``size`` bytes."""

    tenant: str
    storage_class: str
    objects: int
    size: int


class RestoreEstimate(NamedTuple):
    """A tenant's restores of one class at one tier: how many objects, their bytes, the sum of their estimates."""

    tenant: str
    storage_class: str
    tier: str
    objects: int
    size: int
    estimated_usd: float | None


@dataclass(frozen=True)
class Holdings:
    """Everything the cost report prices, read together; each list ordered by tenant (then class and tier)."""

    archived: list[Held] = field(default_factory=list)  # the archive itself, per class
    staged: list[Held] = field(default_factory=list)  # STANDARD: verified files and open packages' members in a staging bucket
    restored_copies: list[Held] = field(default_factory=list)  # STANDARD: package members copied out for their links
    restores: list[RestoreEstimate] = field(default_factory=list)


class CostQueries(CatalogStore):
    def holdings(self, tenant: str | None = None) -> Holdings:
        """What the tenant (every tenant when None) holds and has restored, as the cost report prices it."""
        with self.reading() as conn:
            return Holdings(
                archived=self._archived(conn, tenant),
                staged=self._staged(conn, tenant),
                restored_copies=_totals(live_member_copies(conn, tenant)),
                restores=self._restores(conn, tenant),
            )

    @staticmethod
    def _archived(conn: Any, tenant: str | None) -> list[Held]:
        o = t.objects
        q = (
            sa.select(o.c.tenant, o.c.storage_class, sa.func.count(), sa.func.sum(o.c.size))
            .group_by(o.c.tenant, o.c.storage_class)
            .order_by(o.c.tenant, o.c.storage_class)
        )
        if tenant is not None:
            q = q.where(o.c.tenant == tenant)
        return [Held(name, storage_class, int(count), int(size or 0)) for name, storage_class, count, size in conn.execute(q)]

    @staticmethod
    def _staged(conn: Any, tenant: str | None) -> list[Held]:
        """Staged bytes waiting in a GLACIER_STAGING_URL bucket: verified files and open packages' members (s3:// paths)."""
        r, pm = t.requests, t.package_members
        waiting = sa.select(r.c.tenant, r.c.size, r.c.stage).where(r.c.status == t.VERIFIED)
        members = sa.select(pm.c.tenant, pm.c.size).where(pm.c.staged_path.like("s3://%"))
        if tenant is not None:
            waiting, members = waiting.where(r.c.tenant == tenant), members.where(pm.c.tenant == tenant)
        held: dict[str, list[int]] = {}
        for name, size, stage in conn.execute(waiting):  # the stage is JSON: filtered here, the same on SQLite and PostgreSQL
            if stage and stage.get("kind") in ("file", "member") and str(stage.get("path", "")).startswith("s3://"):
                held.setdefault(name, []).append(int(size or 0))
        for name, size in conn.execute(members):
            held.setdefault(name, []).append(int(size or 0))
        return _totals(held)

    @staticmethod
    def _restores(conn: Any, tenant: str | None) -> list[RestoreEstimate]:
        o, r = t.objects, t.restores
        q = (
            sa.select(r.c.tenant, o.c.storage_class, r.c.tier, sa.func.count(), sa.func.sum(o.c.size), sa.func.sum(r.c.estimated_cost_usd))
            .join(o, o.c.id == r.c.object_id)
            .where(r.c.status.in_(COSTED_RESTORES))
            .group_by(r.c.tenant, o.c.storage_class, r.c.tier)
            .order_by(r.c.tenant, o.c.storage_class, r.c.tier)
        )
        if tenant is not None:
            q = q.where(r.c.tenant == tenant)
        return [
            RestoreEstimate(name, storage_class, tier, int(count), int(size or 0), float(usd) if usd is not None else None)
            for name, storage_class, tier, count, size, usd in conn.execute(q)
        ]


def _totals(sizes: dict[str, list[int]]) -> list[Held]:
    """Per-tenant lists of sizes as STANDARD holdings, by tenant."""
    return [Held(name, "STANDARD", len(values), sum(values)) for name, values in sorted(sizes.items())]
