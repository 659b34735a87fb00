"""restored_checksum_integrity: the bytes that came back are the bytes that went in."""

import dagster as dg

from glacier_pipelines.catalog.verifications import VerificationQueries
from glacier_pipelines.defs.archive.common import root_run_id as _root_run_id
from glacier_pipelines.defs.restore.assets import _table, restored_files
from glacier_pipelines.resources.archive import CatalogResource


@dg.asset_check(
    asset=restored_files,
    blocking=True,
    description="Every object this run delivered or refused was re-hashed after restore; fails naming the objects whose bytes differ from the catalog.",
)
def restored_checksum_integrity(context: dg.AssetCheckExecutionContext, catalog: CatalogResource) -> dg.AssetCheckResult:
    rows = VerificationQueries(catalog.get()).restored_by_run(_root_run_id(context))  # type: ignore[arg-type]
    bad = [(row.url, row.message) for row in rows if not row.verified]
    return dg.AssetCheckResult(
        passed=not bad,
        metadata={"objects_verified": len(rows), "mismatches": len(bad), "mismatched_objects": _table(("object", "problem"), bad)},
    )
