import dagster as dg

from glacier_pipelines.defs.vault.assets import archive_retrievals, archive_transfers, transfer_integrity, vault_inventory, vault_job
from glacier_pipelines.defs.vault.sensors import vault_jobs_sensor

defs = dg.Definitions(
    assets=[vault_inventory, archive_retrievals, archive_transfers],
    asset_checks=[transfer_integrity],
    jobs=[vault_job],
    sensors=[vault_jobs_sensor],
)
