"""Copy a legacy S3 Glacier vault into S3: inventory, paced retrieval jobs, tree-hash verified transfers.

Three steps, each reading its work from the catalog and writing its outcome back, so any of
them can be repeated after a crash and picks up exactly what is left:

1. :func:`take_inventory` (inventory.py) starts an inventory-retrieval job (unless one is
   pending) and, once its output is ready, records one row per archive with its destination key.
2. :func:`request_retrievals` (retrievals.py) starts archive-retrieval jobs, oldest archives
   first, within a daily byte quota and a number of jobs per run; it re-requests outputs that
   are about to expire before their archive was copied.
3. :func:`transfer_archives` (transfers.py) copies each archive whose job output is ready, one
   tree-hash aligned chunk per multipart part: every chunk is checked against Glacier's
   ``x-amz-sha256-tree-hash`` before it is uploaded, and the chunk roots are combined and
   compared with the inventory's tree hash *before* the upload is completed.

Concurrent migrations of one vault act on each archive once: a step claims an archive in the
catalog (catalog/claims.py) before it starts its job or moves its bytes, and leaves an archive
another live run holds to that run. The vault ledger (ledger.py) keeps every archive's row in
S3 next to the copies, so ``catalog rebuild`` gives back the vault tables.

The source vault is never written to: the Glacier client is wrapped in :class:`ReadOnlyGlacier`,
which only lets the read and job calls through (starting a job does not modify a vault).
"""

from glacier_pipelines.catalog import vault_tables as v  # noqa: F401  (callers read statuses as flow.v.DONE)
from glacier_pipelines.flows.vault.inventory import InventoryResult, take_inventory
from glacier_pipelines.flows.vault.jobs import JobChanges, refresh_jobs
from glacier_pipelines.flows.vault.ledger import write_ledger
from glacier_pipelines.flows.vault.migrate import migrate
from glacier_pipelines.flows.vault.reporting import (
    estimate_remaining,
    format_duration,
    migration_state,
    plan_runs,
    progress_history,
    progress_plot_png,
    report_frame,
    retry_failed,
    vault_report,
    write_report,
)
from glacier_pipelines.flows.vault.retrievals import RetrievalReport, request_retrievals
from glacier_pipelines.flows.vault.setup import (
    EMPTY_TREE_HASH,
    INVENTORY_FORMATS,
    MAX_CHUNK_BYTES,
    MAX_JOB_FAILURES,
    MAX_TRANSFER_ATTEMPTS,
    S3_MAX_OBJECT_BYTES,
    S3_MAX_PARTS,
    S3_MIN_PART_BYTES,
    TIERS,
    FaultRepeats,
    MiB,
    ReadOnlyGlacier,
    RepeatedFault,
    VaultNotFound,
    VaultSetup,
    check_vault_name,
    require_vault,
)
from glacier_pipelines.flows.vault.transfers import (
    IntegrityError,
    JobGone,
    TransferReport,
    chunk_size_for,
    transfer_archives,
    verify_transfers,
)

__all__ = [
    "EMPTY_TREE_HASH",
    "INVENTORY_FORMATS",
    "MAX_CHUNK_BYTES",
    "MAX_JOB_FAILURES",
    "MAX_TRANSFER_ATTEMPTS",
    "S3_MAX_OBJECT_BYTES",
    "S3_MAX_PARTS",
    "S3_MIN_PART_BYTES",
    "TIERS",
    "FaultRepeats",
    "IntegrityError",
    "InventoryResult",
    "JobChanges",
    "JobGone",
    "MiB",
    "ReadOnlyGlacier",
    "RepeatedFault",
    "RetrievalReport",
    "TransferReport",
    "VaultNotFound",
    "VaultSetup",
    "check_vault_name",
    "chunk_size_for",
    "estimate_remaining",
    "format_duration",
    "migrate",
    "migration_state",
    "plan_runs",
    "progress_history",
    "progress_plot_png",
    "refresh_jobs",
    "report_frame",
    "request_retrievals",
    "require_vault",
    "retry_failed",
    "take_inventory",
    "transfer_archives",
    "v",
    "vault_report",
    "verify_transfers",
    "write_ledger",
    "write_report",
]
