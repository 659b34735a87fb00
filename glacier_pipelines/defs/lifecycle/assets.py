"""lifecycle_rules (the buckets' lifecycle rules, from the per-tenant declaration) and server_side_archives (moves, per tenant)."""

import dagster as dg

from glacier_pipelines.core.lifecycle import markdown as lifecycle_markdown
from glacier_pipelines.core.moves import MoveError
from glacier_pipelines.defs.archive.common import md_cell as _md_cell, root_run_id as _root_run_id
from glacier_pipelines.defs.partitions import tenants
from glacier_pipelines.flows import lifecycle as lifecycle_flow
from glacier_pipelines.flows import moves as flow
from glacier_pipelines.resources.archive import ArchiveStoreResource, CatalogResource
from glacier_pipelines.resources.lifecycle import LifecycleResource

OWNERS = ["team:archive"]
TAGS = {"domain": "lifecycle"}
RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
TABLE_ROWS = 100
REPORT_OBJECTS = 1000  # objects in the JSON report (the CLI prints it)


class LifecycleRulesConfig(dg.Config):
    dry_run: bool = False  # compute and show the diff, write nothing


class ServerSideArchivesConfig(dg.Config):
    source: str  # s3://bucket/key (one object) or s3://bucket/prefix/ (every object under it)
    storage_class: str = ""  # empty: the archive's class (GLACIER_STORAGE_CLASS)
    verification: str = "trust-s3"  # trust-s3: record S3's own checksum; stream: read each object once and compare
    destination: str = "in-place"  # in-place, or archive: onto the tenant's archive key, then the source is deleted
    checksum: str = ""  # ALGORITHM:HEX announced for a single object
    max_objects: int = 100_000
    dry_run: bool = False  # list and estimate the cost only


@dg.asset(
    group_name="lifecycle",
    owners=OWNERS,
    kinds={"s3"},
    tags=TAGS,
)
def lifecycle_rules(
    context: dg.AssetExecutionContext, config: LifecycleRulesConfig, lifecycle: LifecycleResource, archive_store: ArchiveStoreResource
) -> dg.MaterializeResult:
    """The buckets' lifecycle rules as every tenant declared them (GLACIER_LIFECYCLE_CONFIG), applied idempotently.

    Rules are named `glacier-pipelines:<tenant>:<name>` and scoped to the tenant's prefix. Rules
    of other tools (any other id) are kept as they are; a project rule no longer declared is
    removed. Nothing is written when nothing changed.
    """
    declared = lifecycle.config(archive_store)
    try:
        report = lifecycle_flow.apply_lifecycle(archive_store.client(), declared, dry_run=config.dry_run)
    except MoveError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    if not report.declared:
        context.log.info("GLACIER_LIFECYCLE_CONFIG is unset: no bucket was read or changed")
        return dg.MaterializeResult(
            metadata={"status": "no declaration (GLACIER_LIFECYCLE_CONFIG unset): buckets left as they are", "written": False}
        )
    totals = report.totals()
    context.log.info(f"lifecycle rules: {totals}; written to {report.written or 'no bucket'}")
    return dg.MaterializeResult(
        metadata={
            "status": "dry run: nothing written" if config.dry_run else ("written" if report.written else "unchanged"),
            "config_path": lifecycle.config_path,
            "buckets": ", ".join(p.bucket for p in report.plans),
            "tenants": len(declared.tenants),
            "rules_declared": len(declared.rules()),
            **totals,
            "buckets_written": ", ".join(report.written) or "none",
            "written": bool(report.written),
            "settled_after_write": report.settled,
            "diff": dg.MetadataValue.md(lifecycle_markdown(report.plans)),
        }
    )


def _outcomes_table(outcomes: list[flow.Outcome]) -> dg.MetadataValue:
    if not outcomes:
        return dg.MetadataValue.md("No objects.")
    rows = [
        f"| {o.status} | `{_md_cell(o.source)}` | `{_md_cell(o.destination)}` | {o.size:,} | {o.source_class} → {o.storage_class} | "
        f"{_md_cell(o.checksum_algorithm or '')} | {_md_cell('; '.join(o.messages))} |"
        for o in outcomes[:TABLE_ROWS]
    ]
    more = f"\n\n…and {len(outcomes) - TABLE_ROWS} more" if len(outcomes) > TABLE_ROWS else ""
    return dg.MetadataValue.md(
        "| status | source | destination | bytes | class | S3 checksum | messages |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + more
    )


def _usd(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"


def _cost_table(estimate: dict | None) -> dg.MetadataValue:
    if not estimate:
        return dg.MetadataValue.md("Nothing to copy, or no price list.")
    rows = "\n".join(f"| {_md_cell(line['item'])} | {_usd(line['usd'])} |" for line in estimate["lines"])
    monthly = estimate.get("storage_per_month")
    tail = (
        (
            f"\n\nStorage per month: ${monthly['before_usd']:.6f} before, ${monthly['after_usd']:.6f} after "
            f"(price list {estimate['pricing_version']})"
        )
        if monthly
        else ""
    )
    return dg.MetadataValue.md(f"| charge | USD |\n|---|---|\n{rows}\n| **total** | **{estimate['total']:.6f}** |{tail}")


@dg.asset(
    partitions_def=tenants,
    group_name="lifecycle",
    owners=OWNERS,
    kinds={"s3", "glacier"},
    tags=TAGS,
    retry_policy=RETRY,
)
def server_side_archives(
    context: dg.AssetExecutionContext,
    config: ServerSideArchivesConfig,
    lifecycle: LifecycleResource,
    catalog: CatalogResource,
    archive_store: ArchiveStoreResource,
) -> dg.MaterializeResult:
    """Objects already in S3 moved into an archive class by server-side copies (never downloaded), checked and catalogued.

    CopyObject up to the copy threshold, multipart UploadPartCopy above it, keeping metadata,
    tags and encryption; S3 is asked for a SHA-256 of every copy. Verification per run:
    `trust-s3` records S3's checksum (and compares what S3 can without reading), `stream` reads
    each object once and compares it with the announced, catalogued or S3 checksum. A rerun
    after a crash copies nothing twice.
    """
    setup = lifecycle.setup(catalog, archive_store)
    request = flow.MoveRequest(
        tenant=context.partition_key,
        url=config.source,
        storage_class=config.storage_class or None,
        verification=config.verification,
        destination=config.destination,
        checksum=config.checksum or None,
        max_objects=config.max_objects,
        dry_run=config.dry_run,
    )
    try:
        report = flow.move(setup, request, run_id=_root_run_id(context), progress=context.log.info)
    except (MoveError, ValueError) as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    metadata = {
        "tenant": report.tenant,
        "source": report.url,
        "storage_class": report.storage_class,
        "verification": report.verification,
        "dry_run": config.dry_run,
        "objects_planned": report.planned,
        "bytes_planned": report.planned_bytes,
        "objects_moved": report.count(flow.MOVED),
        "objects_skipped": report.count(flow.SKIPPED),
        "objects_failed": report.count(flow.FAILED),
        "bytes_moved": report.bytes_moved,
        "left_for_next_run": report.left_for_next_run,
        "estimated_cost_usd": report.estimate["total"] if report.estimate else 0.0,
        "cost": _cost_table(report.estimate),
        "objects": _outcomes_table(report.outcomes),
        "report": dg.MetadataValue.json({**report.as_dict(), "objects": report.as_dict()["objects"][:REPORT_OBJECTS]}),
    }
    if report.failed:
        raise dg.Failure(
            description=f"{len(report.failed)} object(s) not moved: "
            + "; ".join(f"{o.source}: {'; '.join(o.messages)}" for o in report.failed[:5]),
            metadata=metadata,
            allow_retries=False,
        )
    return dg.MaterializeResult(metadata=metadata)


lifecycle_job = dg.define_asset_job(
    "lifecycle_job",
    selection=dg.AssetSelection.assets(lifecycle_rules),
    description="Apply every tenant's declared lifecycle rules to the buckets (idempotent; other tools' rules are kept).",
    tags={"domain": "lifecycle"},
)

move_job = dg.define_asset_job(
    "move_job",
    selection=dg.AssetSelection.assets(server_side_archives),
    description="One tenant's server-side move of objects already in S3 into an archive class.",
    tags={"domain": "lifecycle"},
)
