"""The per-request report that `glacier-pipelines report --json` prints (and a rebuild must give back)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.core.packaging import member_url


class Reports:
    """Part of Catalog (see store.py)."""

    if TYPE_CHECKING:  # provided by Catalog (store.py), which is built from these parts
        engine: sa.engine.Engine

    def report(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """Per-request status and stored object, as ``glacier-pipelines report --json`` prints it."""
        r, o, pm = t.requests, t.objects, t.package_members
        q = (
            sa.select(r, o.c.bucket, o.c.key, o.c.storage_class, pm.c.name.label("member"))
            .select_from(r.outerjoin(o, r.c.object_id == o.c.id).outerjoin(pm, pm.c.request_pk == r.c.id))
            .order_by(r.c.id)
        )
        if tenant is not None:
            q = q.where(r.c.tenant == tenant)
        out = []
        with self.engine.connect() as conn:
            for row in conn.execute(q):
                m = row._mapping
                stored = m["bucket"] is not None and m["status"] == t.SUCCESS
                out.append(
                    {
                        "requestId": m["request_id"],
                        "tenant": m["tenant"],
                        "status": m["status"],
                        "messages": list(m["messages"] or []),
                        "checksum": m["checksum"] if stored else None,
                        "algorithm": m["algorithm"] if stored else None,
                        "storedFileUrl": (
                            member_url(m["bucket"], m["key"], m["member"]) if m["member"] else f"s3://{m['bucket']}/{m['key']}"
                        )
                        if stored
                        else None,
                        "fileSizeInBytes": m["size"] if stored else None,
                        "widthInPx": m["width"] if stored else None,
                        "heightInPx": m["height"] if stored else None,
                        "storageClass": m["storage_class"] if stored else None,
                        "deduplicated": bool(m["deduplicated"]),
                        "batchId": m["batch_id"],
                        "runId": m["run_id"],
                    }
                )
        return out
