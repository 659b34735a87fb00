import dagster as dg

from glacier_pipelines.defs.restore.assets import restore_requests, restored_files
from glacier_pipelines.defs.restore.checks import restored_checksum_integrity
from glacier_pipelines.defs.restore.jobs import restore_job
from glacier_pipelines.defs.restore.sensors import restore_completed_sensor

defs = dg.Definitions(
    assets=[restore_requests, restored_files],
    asset_checks=[restored_checksum_integrity],
    jobs=[restore_job],
    sensors=[restore_completed_sensor],
)
