import dagster as dg

from glacier_pipelines.defs.archive.assets import glacier_objects, ingest_batch, verified_files
from glacier_pipelines.defs.partitions import tenants

archive_job = dg.define_asset_job(
    "archive_job",
    selection=dg.AssetSelection.assets(ingest_batch, verified_files, glacier_objects),
    partitions_def=tenants,
    description="One tenant's pending requests, end to end: claim, verify, store, check.",
)
