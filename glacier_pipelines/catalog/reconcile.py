"""What the catalog names in S3 for a tenant: the keys a reconciliation compares with a bucket listing."""

from __future__ import annotations

from typing import Literal, NamedTuple

import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.base import CatalogStore


class NamedKey(NamedTuple):
    """One key a catalog row names: a stored object (standalone or package), or a package's manifest."""

    bucket: str
    key: str
    kind: Literal["object", "manifest"]


class ReconcileQueries(CatalogStore):
    def named_keys(self, tenant: str) -> list[NamedKey]:
        """Every key the tenant's rows name, in any bucket: objects first, then package manifests."""
        o, p = t.objects, t.packages
        objects = sa.select(o.c.bucket, o.c.key).where(o.c.tenant == tenant).order_by(o.c.id)
        manifests = (
            sa.select(o.c.bucket, p.c.manifest_key)
            .join(o, o.c.id == p.c.object_id)
            .where(p.c.tenant == tenant, p.c.manifest_key.is_not(None))
            .order_by(p.c.id)
        )
        with self.reading() as conn:
            return [NamedKey(b, k, "object") for b, k in conn.execute(objects)] + [
                NamedKey(b, k, "manifest") for b, k in conn.execute(manifests)
            ]
