"""Requests from outside: storage requests published on the transport, a restore recorded and run."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

from glacier_pipelines.runs.common import current_defs, ensure_dagster_home, run_restore_job
from glacier_pipelines.settings import Settings


def submit(path: str) -> tuple[int, list[str]]:
    """Publish each JSON line of ``path`` ('-' for stdin) on the request transport; (sent, one error per refused line)."""
    from glacier_pipelines.core.transport import submission_to_message
    from glacier_pipelines.resources import resources_from_env

    stream = sys.stdin if path == "-" else open(path, encoding="utf-8")
    sent, errors = 0, []
    with stream, resources_from_env()["request_transport"].transport() as transport:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(f"line {number}: not valid JSON ({exc.msg}, column {exc.colno}); not submitted")
                continue
            if not isinstance(obj, dict):
                errors.append(f"line {number}: must be a JSON object; not submitted")
                continue
            transport.publish_request(*submission_to_message(obj))
            sent += 1
    return sent, errors


def restore(
    tenant: str,
    *,
    days: int,
    requester: str,
    tier: str = "Bulk",
    request_ids: Iterable[str] = (),
    checksums: Iterable[str] = (),
    urls: Iterable[str] = (),
    note: str | None = None,
) -> dict[str, Any]:
    """Record a restore request, then run restore_job for its tenant (start restores, deliver what is back).

    A request the parser refuses is a RestoreRequestError (a ValueError) before anything is recorded.
    """
    import dagster as dg

    from glacier_pipelines.core.restores import parse_restore_request
    from glacier_pipelines.flows import restore as restore_flow

    settings = Settings.from_env()
    ensure_dagster_home(settings)
    defs = current_defs()
    files = [{"requestId": x} for x in request_ids or []] + [{"checksum": x} for x in checksums or []] + [{"url": x} for x in urls or []]
    data = {"tenant": tenant, "files": files, "days": days, "tier": tier, "requester": requester, **({"note": note} if note else {})}
    r = defs.resources
    request = parse_restore_request(data, max_days=r["restore"].max_days)
    setup = r["restore"].setup(r["catalog"], r["archive_store"])
    summary = restore_flow.submit(setup, request)
    refused = sum(1 for f in summary["files"] if f["status"] == "REFUSED")
    with dg.DagsterInstance.get() as instance:
        result = run_restore_job(instance, request.tenant, defs=defs)
    rows = [row for row in restore_flow.report_rows(setup, request.tenant) if row["restoreId"] == summary["restoreId"]]
    return {
        **summary,
        "runId": result.run_id,
        "runSuccess": result.success,
        "files": rows,
        "requested": len(summary["files"]),
        "refused": refused,
    }
