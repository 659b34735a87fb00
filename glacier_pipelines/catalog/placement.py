"""Content lookups scoped to one placement (bucket, tenant prefix, storage class), for deduplication.

A tenant's settings may change (GLACIER_TENANTS_CONFIG: another bucket, prefix or class), and two
tenants may share content announced alike: a request is only ever answered with bytes that lie where
its tenant stores now. Content found elsewhere is stored again.
"""

from __future__ import annotations

import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.rows import StoredObject, _object
from glacier_pipelines.catalog.store import Catalog


def _in_placement(o: sa.Table) -> sa.ColumnElement[bool]:
    prefix: sa.BindParameter[str] = sa.bindparam("prefix")
    return sa.and_(
        o.c.bucket == sa.bindparam("bucket"),
        o.c.storage_class == sa.bindparam("storage_class"),
        sa.func.substr(o.c.key, 1, sa.func.length(prefix)) == prefix,
    )


_WHOLE_OBJECT_FLAGGED = sa.exists().where(t.bad_locations.c.object_id == t.objects.c.id, t.bad_locations.c.member == "")
_FIND_OBJECT = (
    sa.select(t.objects)
    .join(t.object_checksums, t.object_checksums.c.object_id == t.objects.c.id)
    .where(
        t.objects.c.tenant == sa.bindparam("tenant"),
        t.object_checksums.c.algorithm == sa.bindparam("algorithm"),
        t.object_checksums.c.checksum == sa.bindparam("checksum"),
        ~_WHOLE_OBJECT_FLAGGED,
        _in_placement(t.objects),
    )
    .order_by(t.objects.c.id)
    .limit(1)
)


def _find_member(by_sha256: bool) -> sa.Select:
    pm, r, o, bad = t.package_members, t.requests, t.objects, t.bad_locations
    flagged = sa.exists().where(bad.c.object_id == o.c.id, sa.or_(bad.c.member == "", bad.c.member == pm.c.name))
    q = (
        sa.select(
            pm.c.name.label("member_name"),
            pm.c.offset.label("member_offset"),
            pm.c.length.label("member_length"),
            pm.c.sha256.label("member_sha256"),
            pm.c.size.label("member_size"),
            o,
        )
        .join(r, r.c.id == pm.c.request_pk)
        .join(o, o.c.id == r.c.object_id)
        .where(pm.c.tenant == sa.bindparam("tenant"), r.c.status == t.SUCCESS, pm.c.offset.is_not(None), ~flagged, _in_placement(o))
    )
    if by_sha256:
        q = q.where(pm.c.sha256 == sa.bindparam("sha256"))
    else:
        q = q.where(r.c.algorithm == sa.bindparam("algorithm"), r.c.checksum == sa.bindparam("checksum"))
    return q.order_by(o.c.id).limit(1)


_FIND_MEMBER = {True: _find_member(True), False: _find_member(False)}


class PlacementLookups:
    """The content index of one tenant, restricted to where that tenant stores now."""

    def __init__(self, catalog: Catalog, tenant: str, bucket: str, prefix: str, storage_class: str):
        self.engine = catalog.engine
        self.params = {"tenant": tenant, "bucket": bucket, "prefix": prefix, "storage_class": storage_class}

    def find_object(self, algorithm: str, checksum: str) -> StoredObject | None:
        with self.engine.connect() as conn:
            row = conn.execute(_FIND_OBJECT, {**self.params, "algorithm": algorithm, "checksum": checksum.lower()}).first()
        return _object(row) if row else None

    def find_member(self, *, sha256: str | None = None, algorithm: str | None = None, checksum: str | None = None) -> dict | None:
        params = {**self.params, "sha256": sha256} if sha256 is not None else {**self.params, "algorithm": algorithm, "checksum": checksum}
        with self.engine.connect() as conn:
            row = conn.execute(_FIND_MEMBER[sha256 is not None], params).first()
        if row is None:
            return None
        return {
            "name": row.member_name,
            "offset": row.member_offset,
            "length": row.member_length,
            "sha256": row.member_sha256,
            "size": row.member_size,
            "object": _object(row),
        }
