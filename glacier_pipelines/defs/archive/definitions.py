import dagster as dg

from glacier_pipelines.defs.archive.assets import glacier_objects, ingest_batch, verified_files
from glacier_pipelines.defs.archive.checks import checksum_integrity
from glacier_pipelines.defs.archive.jobs import archive_job
from glacier_pipelines.defs.archive.packages import glacier_packages, package_close_schedule, package_integrity, package_job

defs = dg.Definitions(
    assets=[ingest_batch, verified_files, glacier_objects, glacier_packages],
    asset_checks=[checksum_integrity, package_integrity],
    jobs=[archive_job, package_job],
    schedules=[package_close_schedule],
)
