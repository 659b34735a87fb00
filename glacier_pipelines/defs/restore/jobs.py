import dagster as dg

from glacier_pipelines.defs.restore.assets import restore_requests, restored_files

restore_job = dg.define_asset_job(
    "restore_job",
    selection=dg.AssetSelection.assets(restore_requests, restored_files),
    description="One tenant's restores: start what is pending, deliver what has come back.",
)
