import dagster as dg

from glacier_pipelines.defs.archive.assets import glacier_objects, ingest_batch, verified_files
from glacier_pipelines.defs.archive.checks import checksum_integrity
from glacier_pipelines.defs.archive.jobs import archive_job

defs = dg.Definitions(
    assets=[ingest_batch, verified_files, glacier_objects],
    asset_checks=[checksum_integrity],
    jobs=[archive_job],
)
