"""Restore path assets, partitioned by tenant: restore_requests -> restored_files."""

import base64

import dagster as dg

from glacier_pipelines.core.restores import parse_restore_request
from glacier_pipelines.defs.archive.assets import glacier_objects
from glacier_pipelines.defs.archive.common import GLACIER_RESTORES, md_cell as _md_cell, root_run_id as _root_run_id
from glacier_pipelines.defs.partitions import tenants
from glacier_pipelines.flows import costs
from glacier_pipelines.flows import restore as flow
from glacier_pipelines.resources.archive import ArchiveStoreResource, CatalogResource
from glacier_pipelines.resources.restore import RestoreResource

OWNERS = ["team:archive"]


class RestoreRequestConfig(dg.Config):
    """A restore request launched from the UI; leave the file lists empty to only advance pending requests."""

    request_ids: list[str] = []
    checksums: list[str] = []
    urls: list[str] = []
    days: int = 7
    tier: str = "Bulk"
    requester: str = ""
    note: str = ""


def _table(header: tuple[str, ...], rows: list[tuple]) -> dg.MetadataValue:
    if not rows:
        return dg.MetadataValue.md("None.")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(str(v)) for v in row) + " |" for row in rows[:200]]
    return dg.MetadataValue.md("\n".join(lines))


@dg.asset(
    partitions_def=tenants,
    deps=[glacier_objects],
    group_name="restore",
    owners=OWNERS,
    kinds={"s3"},
    tags={"domain": "restore"},
    pool=GLACIER_RESTORES,
)
def restore_requests(
    context: dg.AssetExecutionContext,
    config: RestoreRequestConfig,
    catalog: CatalogResource,
    archive_store: ArchiveStoreResource,
    restore: RestoreResource,
) -> dg.MaterializeResult:
    """Requests to get archived files back (who, what, tier, days), each object's S3 restore started once."""
    setup = restore.setup(catalog, archive_store)
    tenant = context.partition_key
    submitted = None
    files = [{"requestId": x} for x in config.request_ids] + [{"checksum": x} for x in config.checksums] + [{"url": x} for x in config.urls]
    if files:
        request = parse_restore_request(
            {
                "tenant": tenant,
                "files": files,
                "days": config.days,
                "tier": config.tier,
                "requester": config.requester,
                **({"note": config.note} if config.note else {}),
            },
            max_days=restore.max_days,
        )
        submitted = flow.submit(setup, request)
        context.log.info(f"restore request {submitted['restoreId']}: {len(files)} file(s)")
    report = flow.start(setup, tenant, _root_run_id(context))
    rows = setup.store.rows(tenant=tenant)
    table = costs.cost_table(setup.catalog, setup.pricing, tenant)
    plot = base64.b64encode(costs.plot_png(table)).decode("ascii")
    cost_rows = [
        (
            r["restore_id"][:8],
            r["selector"],
            r["tier"],
            r["days"],
            r["status"],
            f"{r['estimated_cost_usd']:.6f}" if r["estimated_cost_usd"] is not None else "n/a",
        )
        for r in rows
        if r["status"] != "EXPIRED"
    ]
    return dg.MaterializeResult(
        metadata={
            "restores_started": report.started,
            "joined_or_already_restored": report.already,
            "served_directly": report.direct,
            "failed": len(report.failed),
            "tiers_sent": dg.MetadataValue.json(report.tiers),
            "submitted_restore_id": submitted["restoreId"] if submitted else "",
            "estimated_cost_usd": round(
                sum(r["estimated_cost_usd"] or 0 for r in rows if r["status"] in ("PENDING", "IN_PROGRESS", "READY")), 6
            ),
            "restores": _table(("restore", "file", "tier", "days", "status", "estimated USD"), cost_rows),
            "costs_by_class_and_tier": dg.MetadataValue.md(costs.markdown(table)),
            "cost_plot": dg.MetadataValue.md(f"![cost by tenant and tier](data:image/png;base64,{plot})"),
            "pricing_version": setup.pricing.version if setup.pricing else "none",
            "failures": _table(("file", "reason"), report.failed),
        }
    )


@dg.asset(
    partitions_def=tenants,
    deps=[restore_requests],
    group_name="restore",
    owners=OWNERS,
    kinds={"s3", "email"},
    tags={"domain": "restore"},
)
def restored_files(
    context: dg.AssetExecutionContext, catalog: CatalogResource, archive_store: ArchiveStoreResource, restore: RestoreResource
) -> dg.MaterializeResult:
    """Restored objects re-verified against the catalog, with time-limited download links sent to their requesters."""
    setup = restore.setup(catalog, archive_store)
    report = flow.deliver(setup, context.partition_key, _root_run_id(context))
    return dg.MaterializeResult(
        metadata={
            "verified": report.verified,
            "mismatched": len(report.mismatched),
            "ready": report.ready,
            "requesters_notified": report.notified,
            "expired": report.expired,
            "failed": len(report.failed),
            "mismatched_objects": _table(("object", "problem"), report.mismatched),
        }
    )
