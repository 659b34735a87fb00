"""The story of one file: what the catalog knows about a request, and what the Dagster event log recorded about it.

``glacier-pipelines audit REQUEST_ID`` prints it. The catalog says what happened (received, batch,
object, checksums, responses, restores); the event log says which runs did it and what their
materializations and checks reported. Pre-signed links never appear: only their redacted form.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.catalog.audit import AuditQueries, RequestRecord
from glacier_pipelines.catalog.tables import ERROR, INVALID_CONTENT
from glacier_pipelines.core.sources import redact_url


class AuditError(ValueError):
    """The request cannot be told: unknown, or not the given tenant's (same words, so nothing leaks)."""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _find(catalog: Catalog, request_id: str, tenant: str | None) -> RequestRecord:
    rows = AuditQueries(catalog).requests_named(request_id, tenant)
    if not rows:
        raise AuditError(f"no request {request_id!r}" + (f" for tenant {tenant!r}" if tenant else "") + " in the catalog")
    if len(rows) > 1:
        raise AuditError(
            f"request id {request_id!r} exists for several tenants ({', '.join(sorted(r.tenant for r in rows))}): pass --tenant"
        )
    return rows[0]


def catalog_story(catalog: Catalog, request_id: str, tenant: str | None = None) -> dict[str, Any]:
    """Everything the catalog records about one request, its batch, object, package, responses and restores."""
    h = AuditQueries(catalog).history(_find(catalog, request_id, tenant))
    r, b, obj, member = h.request, h.batch, h.object, h.member
    story: dict[str, Any] = {
        "requestId": r.request_id,
        "tenant": r.tenant,
        "status": r.status,
        "messages": list(r.messages),
        "received": {
            "at": _iso(r.received_at),
            "owner": r.owner,
            "session": r.session,
            "url": redact_url(r.body["url"]) if r.body.get("url") else None,
            "destinationDirectory": r.body.get("destinationDirectory"),
            "algorithm": r.algorithm,
            "checksum": r.checksum,
        },
        "file": {"sizeInBytes": r.size, "widthInPx": r.width, "heightInPx": r.height, "deduplicated": r.deduplicated},
        "updatedAt": _iso(r.updated_at),
        "runId": r.run_id,
        "batch": None,
        "object": None,
        "package": None,
    }
    if r.batch_id:
        story["batch"] = {
            "batchId": r.batch_id,
            "createdAt": _iso(b.created_at) if b else None,
            "runId": b.run_id if b else None,
            "requests": b.request_count if b else None,
        }
    if obj is not None:
        story["object"] = {
            "url": obj.url,
            "storageClass": obj.storage_class,
            "sizeInBytes": obj.size,
            "sha256": obj.sha256,
            "s3Checksum": obj.s3_checksum,
            "storedAt": _iso(obj.stored_at),
            "runId": obj.run_id,
            "batchId": obj.batch_id,
            "checksums": dict(obj.checksums),
        }
    if member is not None:
        story["package"] = {
            "packageId": member.package_id,
            "member": member.name,
            "offset": member.offset,
            "length": member.length,
            "sha256": member.sha256,
            "state": member.state,
            "closedAt": _iso(member.closed_at),
            "manifestKey": member.manifest_key,
            "runId": member.run_id,
            "problems": list(member.problems),
        }
    story["responses"] = [
        {"status": x.status, "createdAt": _iso(x.created_at), "publishedAt": _iso(x.published_at), "messages": list(x.messages)}
        for x in h.responses
    ]
    story["restores"] = [
        {
            "restoreId": x.restore_id,
            "requester": x.requester,
            "tier": x.tier,
            "days": x.days,
            "status": x.status,
            "requestedAt": _iso(x.requested_at),
            "estimatedCostUsd": x.estimated_cost_usd,
            "linkIssuedAt": _iso(x.ready_at),
            "link": redact_url(x.download_url) if x.download_url else None,
            "expiresAt": _iso(x.expires_at),
            "notifiedAt": _iso(x.notified_at),
            "runId": x.run_id,
            "messages": list(x.messages),
            "copy": {
                "state": x.copy.state,
                "restoredAt": _iso(x.copy.restored_at),
                "expiresAt": _iso(x.copy.expires_at),
                "verified": x.copy.verified,
                "verifyMessage": x.copy.verify_message,
            }
            if x.copy
            else None,
        }
        for x in h.restores
    ]
    story["failures"] = [m for m in story["messages"]] if story["status"] in (ERROR, INVALID_CONTENT) else []
    story["failures"] += [m for x in story["restores"] if x["status"] == "FAILED" for m in x["messages"]]
    return story


def _scalars(metadata: dict[str, Any]) -> dict[str, Any]:
    """Metadata worth printing: numbers and short text (markdown tables and images stay in the UI)."""
    import dagster as dg

    out = {}
    for k, v in metadata.items():
        if isinstance(v, dg.MarkdownMetadataValue):
            continue
        value = getattr(v, "value", v)
        if isinstance(value, (int, float, bool)) or (isinstance(value, str) and len(value) <= 120 and "\n" not in value):
            out[k] = value
    return out


def _mentions(metadata: dict[str, Any], needles: list[str]) -> bool:
    text = " ".join(str(getattr(v, "value", v)) for v in metadata.values())
    return any(n and n in text for n in needles)


def dagster_story(instance: Any, run_ids: list[str], tenant: str, needles: list[str]) -> list[dict[str, Any]]:
    """The runs that touched the file (and their re-executions): status, materializations, check results and failures."""
    import dagster as dg

    kinds = {
        dg.DagsterEventType.ASSET_MATERIALIZATION,
        dg.DagsterEventType.ASSET_CHECK_EVALUATION,
        dg.DagsterEventType.STEP_FAILURE,
        dg.DagsterEventType.RUN_FAILURE,
    }
    ordered: list[str] = []
    for rid in run_ids:
        for run_id in [rid] + [
            r.run_id for r in instance.get_runs(filters=dg.RunsFilter(tags={"dagster/root_run_id": rid}), ascending=True)
        ]:
            if run_id not in ordered:
                ordered.append(run_id)
    runs: list[dict[str, Any]] = []
    for run_id in ordered:
        run = instance.get_run_by_id(run_id)
        if run is None:
            runs.append(
                {
                    "runId": run_id,
                    "job": None,
                    "status": "not in this Dagster instance",
                    "materializations": [],
                    "checks": [],
                    "failures": [],
                }
            )
            continue
        entry: dict[str, Any] = {
            "runId": run_id,
            "job": run.job_name,
            "status": run.status.value,
            "partition": run.tags.get("dagster/partition"),
            "materializations": [],
            "checks": [],
            "failures": [],
        }
        for ev in instance.all_logs(run_id, of_type=kinds):
            de = ev.dagster_event
            when = datetime.fromtimestamp(ev.timestamp, timezone.utc).isoformat()
            if de.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                m = de.step_materialization_data.materialization
                if m.partition not in (None, tenant):
                    continue
                entry["materializations"].append(
                    {
                        "asset": m.asset_key.to_user_string(),
                        "partition": m.partition,
                        "at": when,
                        "namesThisFile": _mentions(m.metadata, needles),
                        "metadata": _scalars(m.metadata),
                    }
                )
            elif de.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
                c = de.event_specific_data
                entry["checks"].append(
                    {
                        "check": c.check_name,
                        "asset": c.asset_key.to_user_string(),
                        "passed": c.passed,
                        "at": when,
                        "namesThisFile": _mentions(c.metadata, needles),
                        "metadata": _scalars(c.metadata),
                    }
                )
            else:
                error = getattr(de.event_specific_data, "error", None)
                entry["failures"].append(f"{de.step_key or 'run'}: {error.message.strip() if error else de.message}")
        runs.append(entry)
    return runs


# The archive path's assets and checks, whose metadata tables name each request they handled.
ARCHIVE_ASSETS = ("ingest_batch", "verified_files", "glacier_objects", "glacier_packages")
ARCHIVE_CHECKS = (("glacier_objects", "checksum_integrity"), ("glacier_packages", "package_integrity"))


def runs_naming(instance: Any, tenant: str, request_id: str, limit: int = 500) -> list[str]:
    """Runs whose archive materializations (tenant's partition) or check evaluations name the request, from the event log.

    The lineage the UI shows: each step may run in a run of its own (assets stand alone), so
    the catalog's run ids alone do not name every run that handled the file.
    """
    import dagster as dg

    needle = [f"`{request_id}`"]
    found: list[tuple[float, str]] = []
    for name in ARCHIVE_ASSETS:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(name), asset_partitions=[tenant]), limit=limit
        ).records
        found += [
            (r.timestamp, r.run_id) for r in records if r.asset_materialization and _mentions(r.asset_materialization.metadata, needle)
        ]
    for asset, check in ARCHIVE_CHECKS:
        for r in instance.event_log_storage.get_asset_check_execution_history(dg.AssetCheckKey(dg.AssetKey(asset), check), limit=limit):
            event = r.event.dagster_event if r.event else None
            data = event.event_specific_data if event else None
            if data is not None and _mentions(getattr(data, "metadata", {}) or {}, needle):
                found.append((r.event.timestamp, r.run_id))
    return [run_id for _, run_id in sorted(found)]


def audit(catalog: Catalog, instance: Any, request_id: str, tenant: str | None = None) -> dict[str, Any]:
    """One JSON-ready document: the catalog's story of the request plus the Dagster runs that touched it."""
    story = catalog_story(catalog, request_id, tenant)
    ids = [
        story["batch"] and story["batch"]["runId"],
        story["runId"],
        story["object"] and story["object"]["runId"],
        story["package"] and story["package"]["runId"],
        *[x["runId"] for x in story["restores"]],
    ]
    if instance is not None:
        ids += runs_naming(instance, story["tenant"], request_id)
    run_ids = list(dict.fromkeys(i for i in ids if i))
    needles = [request_id, (story["batch"] or {}).get("batchId") or "", (story["object"] or {}).get("url") or ""]
    story["runs"] = dagster_story(instance, run_ids, story["tenant"], needles) if instance is not None else []
    story["failures"] += [f"run {r['runId'][:8]} {f}" for r in story["runs"] for f in r["failures"]]
    story["failures"] += [
        f"check {c['check']} failed in run {r['runId'][:8]}" for r in story["runs"] for c in r["checks"] if not c["passed"]
    ]
    return story


def render(story: dict[str, Any]) -> str:
    """The story as text, oldest fact first."""
    rec = story["received"]
    lines: list[str] = []
    add = lines.append
    add(f"request {story['requestId']} (tenant {story['tenant']}): {story['status']}")
    add(f"  received   {rec['at']} from {rec['owner'] or '-'} (session {rec['session'] or '-'})")
    add(f"             {rec['algorithm'] or '?'} {rec['checksum'] or '?'}  {rec['url'] or '-'} -> {rec['destinationDirectory'] or '.'}")
    if story["batch"]:
        b = story["batch"]
        add(f"  batch      {b['batchId']} ({b['requests']} request(s)) claimed {b['createdAt']} by run {b['runId']}")
    f = story["file"]
    if f["sizeInBytes"] is not None:
        image = f", {f['widthInPx']}x{f['heightInPx']} px" if f["widthInPx"] is not None else ""
        add(f"  verified   {f['sizeInBytes']} bytes{image}; announced checksum matched" + (" (deduplicated)" if f["deduplicated"] else ""))
    if story["object"]:
        o = story["object"]
        add(f"  object     {o['url']}  {o['storageClass']}  {o['sizeInBytes']} bytes, stored {o['storedAt']} by run {o['runId']}")
        add("  checksums  " + ", ".join(f"{a} {c}" for a, c in o["checksums"].items()) + f"; S3 {o['s3Checksum']}")
    if story["package"]:
        p = story["package"]
        add(
            f"  package    {p['packageId']} member {p['member']} at offset {p['offset']} ({p['length']} bytes), {p['state']}, "
            f"manifest {p['manifestKey'] or '-'}"
        )
    for x in story["responses"]:
        add(
            f"  response   {x['status']} queued {x['createdAt']}, "
            + (f"published {x['publishedAt']}" if x["publishedAt"] else "not yet published")
        )
    for r in story["runs"]:
        add(f"  run        {r['runId']} {r['job'] or ''} {r['status']}")
        for m in r["materializations"]:
            keys = ", ".join(f"{k} {v}" for k, v in m["metadata"].items() if k not in ("tenant", "bucket"))
            add(
                f"    materialized {m['asset']} [{m['partition']}] {m['at']}"
                + (" (names this file)" if m["namesThisFile"] else "")
                + (f": {keys}" if keys else "")
            )
        for c in r["checks"]:
            add(
                f"    check {c['check']} on {c['asset']}: {'PASSED' if c['passed'] else 'FAILED'}"
                + (" (names this file) " if c.get("namesThisFile") else " ")
                + ", ".join(f"{k} {v}" for k, v in c["metadata"].items())
            )
    for x in story["restores"]:
        cost = f"${x['estimatedCostUsd']:.6f}" if x["estimatedCostUsd"] is not None else "no estimate"
        add(f"  restore    {x['restoreId']} by {x['requester']}: {x['tier']}, {x['days']} day(s), {cost}, {x['status']}")
        add(
            f"             requested {x['requestedAt']}; link issued {x['linkIssuedAt'] or '-'}, expires {x['expiresAt'] or '-'}"
            + (f"; copy {x['copy']['state']}" + (", bytes re-verified" if x["copy"]["verified"] else "") if x["copy"] else "")
        )
    for m in story["failures"]:
        add(f"  failure    {m}")
    if story["messages"] and story["status"] not in (ERROR, INVALID_CONTENT):
        for m in story["messages"]:
            add(f"  note       {m}")
    return "\n".join(lines)
