"""restored_checksum_integrity: the bytes that came back are the bytes that went in."""

import dagster as dg
import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.defs.archive.common import root_run_id as _root_run_id
from glacier_pipelines.defs.restore.assets import _table, restored_files
from glacier_pipelines.resources.archive import CatalogResource


@dg.asset_check(asset=restored_files, blocking=True,
                description="Every object this run delivered or refused was re-hashed after restore; fails naming the objects whose bytes differ from the catalog.")
def restored_checksum_integrity(context: dg.AssetCheckExecutionContext, catalog: CatalogResource) -> dg.AssetCheckResult:
    run_id = _root_run_id(context)  # type: ignore[arg-type]
    s, r, o = t.object_restores, t.restores, t.objects
    q = (
        sa.select(o.c.bucket, o.c.key, s.c.verified, s.c.verify_message)
        .join(s, s.c.object_id == o.c.id)
        .where(o.c.id.in_(sa.select(r.c.object_id).where(r.c.run_id == run_id)))
        .where(s.c.verified.is_not(None))
    )
    with catalog.get().engine.connect() as conn:
        rows = conn.execute(q).all()
    bad = [(f"s3://{b}/{k}", m) for b, k, ok, m in rows if not ok]
    return dg.AssetCheckResult(passed=not bad, metadata={
        "objects_verified": len(rows), "mismatches": len(bad), "mismatched_objects": _table(("object", "problem"), bad)})
