"""Vault copy assets, partitioned by vault: vault_inventory -> archive_retrievals -> archive_transfers."""

import base64

import dagster as dg

from glacier_pipelines.core import vault_names
from glacier_pipelines.defs.archive.common import md_cell as _md_cell, root_run_id as _root_run_id
from glacier_pipelines.flows import vault as flow
from glacier_pipelines.resources.archive import ArchiveStoreResource, CatalogResource
from glacier_pipelines.resources.vault import VaultResource

# One partition per source vault; archives live in the catalog, not in partition keys.
vaults = dg.DynamicPartitionsDefinition(name="vaults")

OWNERS = ["team:archive"]
TAGS = {"domain": "vault"}
RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
REPORT_ROWS = 1000  # archives listed in the metadata table; the CSV report has all of them


class VaultInventoryConfig(dg.Config):
    refresh: bool = False  # take a new inventory even though one is loaded (known archives keep their status)


def _setup(context, vault: VaultResource, catalog: CatalogResource, archive_store: ArchiveStoreResource) -> flow.VaultSetup:
    """The vault setup of a step: an archive another Dagster run claimed is taken over once that run is over."""
    setup = vault.setup(catalog, archive_store)

    def run_over(run_id: str) -> bool:
        run = context.instance.get_run_by_id(run_id)
        return run is not None and run.is_finished  # an unknown run (another process's) is left to its claim's timeout

    setup.run_finished = run_over
    return setup


def _pairs_table(pairs: list[tuple[str, str]], head: str, empty: str, limit: int = 100) -> dg.MetadataValue:
    if not pairs:
        return dg.MetadataValue.md(empty)
    rows = "\n".join(f"| `{_md_cell(a)}` | {_md_cell(b)} |" for a, b in pairs[:limit])
    more = f"\n\n…and {len(pairs) - limit} more" if len(pairs) > limit else ""
    return dg.MetadataValue.md(f"{head}\n|---|---|\n{rows}{more}")


@dg.asset(
    partitions_def=vaults,
    group_name="vault",
    owners=OWNERS,
    kinds={"glacier", "csv"},
    tags=TAGS,
    retry_policy=RETRY,
)
def vault_inventory(
    context: dg.AssetExecutionContext,
    config: VaultInventoryConfig,
    vault: VaultResource,
    catalog: CatalogResource,
    archive_store: ArchiveStoreResource,
) -> dg.MaterializeResult:
    """The vault's archives (id, description, size, creation date, tree hash) with their destination keys, from an inventory-retrieval job.

    Does not wait for Glacier: while the job runs this records it and reports "waiting";
    vault_jobs_sensor requests the next run once the output is ready.
    """
    setup = _setup(context, vault, catalog, archive_store)
    name = context.partition_key
    result = flow.take_inventory(setup, name, refresh=config.refresh, run_id=_root_run_id(context))
    context.log.info(result.message)
    ledgered = flow.ledger.record(setup, name)
    metadata: dict = {
        "vault": name,
        "status": result.state,
        "job_id": result.job_id or "",
        "message": result.message,
        "inventory_format": setup.inventory_format,
        "ledger_archives_written": ledgered,
    }
    if result.state == "loaded":
        reasons = {r: int(result.reasons.get(r, 0)) for r in vault_names.REASONS}
        metadata.update(
            {
                "archives": result.archives,
                "total_bytes": result.bytes,
                "oldest": result.oldest or "",
                "newest": result.newest or "",
                "new_archives": result.new_archives,
                "naming_reasons": dg.MetadataValue.json(reasons),
                "naming_table": dg.MetadataValue.md(
                    "| naming rule | archives |\n|---|---|\n" + "\n".join(f"| {r} | {n} |" for r, n in reasons.items())
                ),
                "overrides_csv": result.overrides or "none",
                "destination": f"s3://{setup.bucket}/{setup.prefix}/{name}/",
            }
        )
        metadata.update({f"names_{r}": n for r, n in reasons.items()})
        if result.path:
            metadata["inventory_path"] = dg.MetadataValue.path(result.path)
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    partitions_def=vaults,
    deps=[vault_inventory],
    group_name="vault",
    owners=OWNERS,
    kinds={"glacier", "sql"},
    tags=TAGS,
    retry_policy=RETRY,
)
def archive_retrievals(
    context: dg.AssetExecutionContext, vault: VaultResource, catalog: CatalogResource, archive_store: ArchiveStoreResource
) -> dg.MaterializeResult:
    """Archive-retrieval jobs started for the vault's archives, oldest first, within the daily byte quota and jobs per run.

    Outputs about to expire before their archive was copied are requested again; archives S3
    cannot hold as one object (over 5 TiB) are SKIPPED with the reason.
    """
    setup = _setup(context, vault, catalog, archive_store)
    name = context.partition_key
    report = flow.request_retrievals(setup, name, run_id=_root_run_id(context))
    ledgered = flow.ledger.record(setup, name)
    totals = setup.store.status_totals(name)
    pacing = (
        "daily quota reached"
        if report.quota_limited
        else "job limit per run reached"
        if report.rate_limited
        else (report.stopped or "not limited")
    )
    context.log.info(f"{len(report.started)} job(s) started, {len(report.reinitiated)} re-requested; {pacing}")
    return dg.MaterializeResult(
        metadata={
            "vault": name,
            "tier": setup.tier,
            "jobs_started": len(report.started),
            "bytes_started": report.bytes_started,
            "jobs_reinitiated": len(report.reinitiated),
            "jobs_checked": report.jobs.checked,
            "jobs_ready": len(report.jobs.succeeded),
            "jobs_failed_or_expired": len(report.jobs.failed) + len(report.jobs.expired),
            "quota_used_bytes_24h": report.quota_used,
            "daily_bytes": setup.daily_bytes,
            "max_jobs_per_run": setup.max_jobs,
            "pacing": pacing,
            "skipped": len(report.skipped),
            "already_in_s3": len(report.already_present),
            "left_to_other_runs": len(report.left_to_others),
            "ledger_archives_written": ledgered,
            "empty_archives": len(report.empty),
            "failed": len(report.failed),
            "waiting_for_jobs": totals[flow.v.REQUESTED][0],
            "waiting_for_quota": totals[flow.v.NEW][0],
            "started": _pairs_table([(a, f"{size:,} bytes") for a, size in report.started], "| archive | size |", "No job started."),
            "reinitiated": _pairs_table(
                [(a, f"{old[:12]}… → {new[:12]}…") for a, old, new in report.reinitiated], "| archive | job |", "None."
            ),
            "skipped_archives": _pairs_table(report.skipped + report.failed, "| archive | reason |", "None."),
        }
    )


@dg.asset(
    partitions_def=vaults,
    deps=[archive_retrievals],
    group_name="vault",
    owners=OWNERS,
    kinds={"glacier", "s3"},
    tags=TAGS,
    retry_policy=RETRY,
)
def archive_transfers(
    context: dg.AssetExecutionContext, vault: VaultResource, catalog: CatalogResource, archive_store: ArchiveStoreResource
) -> dg.MaterializeResult:
    """Archives copied from their retrieval job output into S3, one verified tree-hash range per part, completed only when the whole tree hash matches.

    A chunk or archive that fails verification is aborted and FAILED alone; an archive
    interrupted by an S3 or network error keeps its upload for the next run, and this
    materialization fails so the retry policy resumes it.
    """
    setup = _setup(context, vault, catalog, archive_store)
    name = context.partition_key
    report = flow.transfer_archives(setup, name, run_id=_root_run_id(context))
    ledgered = flow.ledger.record(setup, name)
    totals = setup.store.status_totals(name)
    v = flow.v
    staged = (totals[v.STAGED][0] + totals[v.TRANSFERRING][0], totals[v.STAGED][1] + totals[v.TRANSFERRING][1])
    groups = {
        "requested": totals[v.REQUESTED],
        "staged": staged,
        "downloaded": (len(report.done), report.bytes_transferred),
        "failed": totals[v.FAILED],
        "skipped": totals[v.SKIPPED],
        "done": totals[v.DONE],
        "new": totals[v.NEW],
    }
    eta = flow.estimate_remaining(setup, name)
    frame = flow.report_frame(setup, name)
    report_path = flow.write_report(setup, name)
    shown = frame.head(REPORT_ROWS)[["archiveId", "destinationKey", "status", "sizeInBytes", "messages"]].copy()
    shown["archiveId"] = shown["archiveId"].map(lambda a: a[:16] + "…")
    for column in ("destinationKey", "messages"):
        shown[column] = shown[column].map(_md_cell)
    table = shown.to_markdown(index=False) if len(shown) else "No archives."
    if len(frame) > REPORT_ROWS:
        table += f"\n\n…and {len(frame) - REPORT_ROWS} more in {report_path}"
    png = flow.progress_plot_png(setup, name)
    total_archives = sum(n for n, _ in totals.values())
    total_bytes = sum(b for _, b in totals.values())
    metadata: dict = {
        "vault": name,
        "bucket": setup.bucket,
        "storage_class": setup.upload.storage_class,
        "total_archives": total_archives,
        "total_bytes": total_bytes,
        **{f"{group}_archives": n for group, (n, _) in groups.items()},
        **{f"{group}_bytes": b for group, (_, b) in groups.items()},
        "parts_uploaded": report.parts_uploaded,
        "copied_by_other_runs": len(report.by_other_runs),
        "left_to_other_runs": len(report.left_to_others),
        "ledger_archives_written": ledgered,
        "interrupted": len(report.interrupted),
        "requeued_expired_jobs": len(report.requeued),
        "seconds": round(report.seconds, 3),
        "throughput_mib_s": round(report.bytes_transferred / 1048576 / report.seconds, 2) if report.seconds > 0 else 0.0,
        "bytes_remaining": eta["bytes_remaining"],
        "estimated_time_remaining": flow.format_duration(eta["seconds"]),
        "estimated_seconds_remaining": float(eta["seconds"]) if eta["seconds"] is not None else -1.0,
        "quota_days_remaining": round(eta["quota_days"], 2) if eta["quota_days"] is not None else -1.0,
        "failures": _pairs_table(report.failed + report.interrupted, "| archive | reason |", "No failures."),
        "report": dg.MetadataValue.md(table),
        "report_path": dg.MetadataValue.path(str(report_path)),
    }
    if png is not None:
        metadata["progress_plot"] = dg.MetadataValue.md(
            f"![bytes copied vs total](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
        )
    if report.interrupted:
        raise dg.Failure(
            description=f"{len(report.interrupted)} archive transfer(s) interrupted; their uploads stay open and resume on retry: "
            + "; ".join(f"{a[:16]}…: {why}" for a, why in report.interrupted[:5]),
            metadata=metadata,
        )
    return dg.MaterializeResult(metadata=metadata)


@dg.asset_check(asset=archive_transfers, blocking=True)
def transfer_integrity(
    context: dg.AssetCheckExecutionContext, vault: VaultResource, catalog: CatalogResource, archive_store: ArchiveStoreResource
) -> dg.AssetCheckResult:
    """Each archive this run copied is what S3 holds: size, SHA-256 checksum (HEAD with ChecksumMode ENABLED) and tree hash
    match the inventory and the copy; a mismatching archive is FAILED in the catalog and named here."""
    setup = _setup(context, vault, catalog, archive_store)
    name = context.run.tags.get("dagster/partition") or ""
    faults = flow.verify_transfers(setup, name, run_id=_root_run_id(context))
    flow.ledger.record(setup, name)  # archives found mismatching are FAILED in the ledger too
    return dg.AssetCheckResult(
        passed=not faults,
        metadata={
            "vault": name,
            "failed_archives": len(faults),
            "failures": _pairs_table([(f"{a} {k}", why) for a, k, why in faults], "| archive | fault |", "No mismatch."),
        },
    )


vault_job = dg.define_asset_job(
    "vault_job",
    selection=dg.AssetSelection.assets(vault_inventory, archive_retrievals, archive_transfers)
    | dg.AssetSelection.checks(transfer_integrity),
    description="One vault's copy: inventory, paced retrieval jobs, verified transfers of what is ready.",
    tags={"domain": "vault"},
)
