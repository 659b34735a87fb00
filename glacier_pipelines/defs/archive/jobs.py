import dagster as dg

from glacier_pipelines.defs.archive.assets import glacier_objects, ingest_batch, verified_files
from glacier_pipelines.defs.archive.packages import glacier_packages

archive_job = dg.define_asset_job(
    "archive_job",
    selection=dg.AssetSelection.assets(ingest_batch, verified_files, glacier_objects, glacier_packages),
    description="One tenant's pending requests, end to end: claim, verify, store, check.",
)
