import dagster as dg

from glacier_pipelines.defs.lifecycle.assets import lifecycle_job, lifecycle_rules, move_job, server_side_archives

defs = dg.Definitions(
    assets=[lifecycle_rules, server_side_archives],
    jobs=[lifecycle_job, move_job],
)
