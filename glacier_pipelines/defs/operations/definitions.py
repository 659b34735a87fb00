import dagster as dg

from glacier_pipelines.defs.operations.assets import bucket_reconciliation, cost_report, restore_expiry
from glacier_pipelines.defs.operations.rebuild import catalog_rebuild
from glacier_pipelines.defs.operations.schedules import (
    cost_report_job,
    cost_report_schedule,
    reconciliation_job,
    reconciliation_schedule,
    restore_expiry_job,
    restore_expiry_schedule,
)

defs = dg.Definitions(
    assets=[bucket_reconciliation, restore_expiry, cost_report, catalog_rebuild],
    jobs=[reconciliation_job, restore_expiry_job, cost_report_job],
    schedules=[reconciliation_schedule, restore_expiry_schedule, cost_report_schedule],
)
