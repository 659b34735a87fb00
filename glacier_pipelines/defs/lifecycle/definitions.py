import dagster as dg

from glacier_pipelines.defs.lifecycle.assets import lifecycle_job, lifecycle_rules, move_job, server_side_archives
from glacier_pipelines.defs.lifecycle.compaction import package_compaction, package_compaction_job, package_compaction_schedule
from glacier_pipelines.defs.lifecycle.trash import trash_purge, trash_purge_job, trash_purge_schedule

defs = dg.Definitions(
    assets=[lifecycle_rules, server_side_archives, trash_purge, package_compaction],
    jobs=[lifecycle_job, move_job, trash_purge_job, package_compaction_job],
    schedules=[trash_purge_schedule, package_compaction_schedule],
)
