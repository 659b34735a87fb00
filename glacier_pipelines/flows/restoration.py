"""Restoration requests over the request queue: they ride on the restore path (``flows/restore.py``).

``submit_pending`` records each request's restore (``restore.submit``: one row per file, refused
files with the reason); ``restore_job`` starts and delivers it as for any restore; ``sync`` answers
from the restore rows' states, catalog only:

- ``DELAYED`` once the restore started (a file is in progress or ready),
- then ``SUCCESS`` with each file's download link and its expiry once every file is ready,
- or ``ERROR`` naming each file that was refused, failed or expired (the files that did become
  ready are still listed in ``content.files`` with their links, so nothing restored is wasted).

Links are pre-signed URLs: they go into the response body only, never into logs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.worker_requests import DELAYED, SUBMITTED, WorkerRequestStore
from glacier_pipelines.core import faults, packaging
from glacier_pipelines.core.restores import TERMINAL, RestoreRequest
from glacier_pipelines.core.worker_requests import RestorationRequest
from glacier_pipelines.flows import availability
from glacier_pipelines.flows import restore as flow

log = logging.getLogger(__name__)
_EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")
NO_MAIL_DOMAIN = "regards-worker.invalid"  # RFC 2606: never deliverable; the restore path sends no email there


@dataclass
class RestorationReport:
    submitted: int = 0
    delayed: int = 0
    answered: dict[str, int] = field(default_factory=dict)

    def count(self, status: str) -> None:
        self.answered[status] = self.answered.get(status, 0) + 1


def requester_for(owner: str | None, tenant: str) -> str:
    """The REGARDS owner when it is an email address (it then gets the usual email too), else an address never mailed."""
    return owner.strip() if owner and _EMAIL.match(owner.strip()) else f"{tenant}@{NO_MAIL_DOMAIN}"


def submit_pending(
    setup: flow.RestoreSetup,
    *,
    default_tier: str = "Bulk",
    default_days: int = 7,
    max_days: int = 365,
    limit: int = 200,
    report: RestorationReport | None = None,
    tenant_defaults: Callable[[str], tuple[str, int]] | None = None,
) -> RestorationReport:
    """Record the restore of each pending restoration; ``tenant_defaults(tenant)`` gives (tier, days) when the request has none."""
    store, report = WorkerRequestStore(setup.catalog), report or RestorationReport()
    for row in store.pending("RESTORATION", limit=limit):
        try:
            body = RestorationRequest.model_validate(row["body"])
            tier_default, days_default = tenant_defaults(row["tenant"]) if tenant_defaults else (default_tier, default_days)
            days = body.days or days_default
            if days > max_days:
                message = f"days: at most {max_days}, got {days}"
                store.set_status(row["id"], t.ERROR, messages=[message], response=(t.ERROR, [message], None))
                report.count(t.ERROR)
                continue
            files = [availability.current(setup.catalog, row["tenant"], f) for f in body.files]  # old URLs of compacted members
            request = RestoreRequest(
                tenant=row["tenant"],
                files=files,
                days=days,
                tier=body.tier or tier_default,
                requester=requester_for(row["owner"], row["tenant"]),
                note=f"restoration request {row['request_id']} (AMQP)",
            )
            summary = flow.submit(setup, request)
            store.set_status(row["id"], SUBMITTED, restore_id=summary["restoreId"])
            report.submitted += 1
        except Exception as exc:  # noqa: BLE001 - one bad request never stops the others
            if faults.classify(exc) != "request":
                log.warning("restoration %s waits: %s", row["request_id"], faults.describe(exc))
                continue
            message = f"the restoration could not be recorded: {faults.describe(exc)}"
            store.set_status(row["id"], t.ERROR, messages=[message], response=(t.ERROR, [message], None))
            report.count(t.ERROR)
    return report


def _asked(setup: flow.RestoreSetup, tenant: str, body: dict[str, Any]) -> dict[str, str]:
    """How each file was named in the request, by how its restore row names it (they differ for an aliased old URL)."""
    out = {}
    for selector in RestorationRequest.model_validate(body).files:
        out[availability.current(setup.catalog, tenant, selector).describe()] = selector.describe()
    return out


def _file(setup: flow.RestoreSetup, row: dict[str, Any], asked: dict[str, str] | None = None) -> dict[str, Any]:
    url = None
    if row["object_id"] is not None:
        obj = setup.store.get_object(row["object_id"])
        url = packaging.member_url(obj.bucket, obj.key, row["member"]["name"]) if row.get("member") else obj.url
    ready = row["status"] == "READY"
    return {
        "file": (asked or {}).get(row["selector"], row["selector"]),
        "status": row["status"],
        "storedFileUrl": url,
        "tier": row["tier"],
        "days": row["days"],
        "downloadUrl": row["download_url"] if ready else None,
        "expiresAt": row["expires_at"].isoformat() if ready and row["expires_at"] else None,
        "estimatedCostUsd": row["estimated_cost_usd"],
    }


def sync(setup: flow.RestoreSetup, *, limit: int = 500, report: RestorationReport | None = None) -> RestorationReport:
    """Answer submitted restorations from their restore rows: DELAYED when started, then SUCCESS or ERROR."""
    store, report = WorkerRequestStore(setup.catalog), report or RestorationReport()
    for row in store.pending("RESTORATION", statuses=(SUBMITTED, DELAYED), limit=limit):
        rows = setup.store.rows(restore_id=row["restore_id"])
        if not rows:
            continue
        statuses = [r["status"] for r in rows]
        if all(s == "READY" or s in TERMINAL for s in statuses):
            asked = _asked(setup, row["tenant"], row["body"])
            files = [_file(setup, r, asked) for r in rows]
            content = {"restoreId": row["restore_id"], "files": files}
            if all(s == "READY" for s in statuses):
                store.set_status(row["id"], t.SUCCESS, messages=[], response=(t.SUCCESS, [], content))
                report.count(t.SUCCESS)
            else:
                messages = [
                    f"{asked.get(r['selector'], r['selector'])}: {r['status']}: {'; '.join(r['messages'] or []) or 'no reason recorded'}"
                    for r in rows
                    if r["status"] != "READY"
                ]
                store.set_status(row["id"], t.ERROR, messages=messages, response=(t.ERROR, messages, content))
                report.count(t.ERROR)
        elif row["status"] == SUBMITTED and any(s in ("IN_PROGRESS", "READY") for s in statuses):
            asked = _asked(setup, row["tenant"], row["body"])
            content = {
                "restoreId": row["restore_id"],
                "files": [{"file": asked.get(r["selector"], r["selector"]), "status": r["status"]} for r in rows],
            }
            message = f"restore {row['restore_id']} started: {sum(s != 'REFUSED' for s in statuses)} of {len(rows)} file(s)"
            store.set_status(row["id"], DELAYED, response=(t.DELAYED, [message], content))
            report.delayed += 1
    return report
