"""Restore steps: accept a request, start one S3 restore per object, notice completion, deliver verified links.

State lives in the catalog (``restores`` per file, ``object_restores`` per object), so every
step can run again and only does what is left. Concurrent runs send one RestoreObject per object
and deliver each file once: a run claims the object (catalog/claims.py) before it asks S3 or reads
the restored bytes, and leaves an object another live run holds to that run.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from glacier_pipelines.catalog import claims as cl
from glacier_pipelines.core import events, packaging, pricing
from glacier_pipelines.core.objectstore import StoreError
from glacier_pipelines.core.restores import (
    RestoreRequest,
    needs_restore,
    next_poll_delay,
    tier_refusal,
    utcnow,
)
from glacier_pipelines.core.sources import redact_url
from glacier_pipelines.flows.restore_delivery import (  # noqa: F401  (delivery and expiry, here for their callers)
    copy_key,
    deliver,
    expire,
    expire_links,
    expiry_due,
)
from glacier_pipelines.flows.restore_setup import RestoreReport, RestoreSetup, restore_member, sound_copy
from glacier_pipelines.flows.store_faults import said

log = logging.getLogger(__name__)
TIER_SPEED = {"Expedited": 0, "Standard": 1, "Bulk": 2}


def _estimate(setup: RestoreSetup, storage_class: str, tier: str, size: int, days: int) -> dict[str, Any] | None:
    if setup.pricing is None:
        return None
    try:
        if needs_restore(storage_class):
            return pricing.estimate_restore(setup.pricing, storage_class=storage_class, tier=tier, size_bytes=size, days=days).as_dict()
        return None
    except pricing.PricingError as exc:
        return {"total": None, "error": str(exc)}


def submit(setup: RestoreSetup, request: RestoreRequest) -> dict[str, Any]:
    """Record a restore request, one row per file; files that cannot be restored are refused with the reason."""
    restore_id = str(uuid.uuid4())
    store = setup.store
    rows, files = [], []
    costed: set[int] = set()
    for selector in request.files:
        obj, request_id, member = store.resolve(request.tenant, selector)
        messages: list[str] = []
        if obj is not None and setup.catalog.location_flagged(obj.id, member["name"] if member else ""):
            alt = sound_copy(setup, request.tenant, obj, member)
            if alt is not None:
                messages.append(
                    f"the copy at {_stored_url(obj, member)} was found missing or corrupt; "
                    f"the same content at {alt.url} is restored instead"
                )
                obj, member = alt.object, restore_member(alt)
        cost = None
        if obj is None:
            status = "REFUSED"  # same words whether it is unknown or another tenant's
            messages.append(f"{selector.describe()}: no archived file of tenant {request.tenant} has that name")
        elif (why := tier_refusal(obj.storage_class, request.tier)) is not None:
            status = "REFUSED"
            messages.append(why)
        else:
            status = "PENDING"
            if obj.id in costed:  # the object (a package) is retrieved once for all its members asked
                cost = {"total": 0.0, "lines": [{"item": f"covered by the restore of {obj.url} in this request", "usd": 0.0}]}
            else:
                cost = _estimate(setup, obj.storage_class, request.tier, obj.size, request.days)
                costed.add(obj.id)
            if member is not None:
                messages.append(f"member {member['name']} of package {obj.url}: the package is restored, then the member extracted")
            if not needs_restore(obj.storage_class):
                messages.append(f"{obj.storage_class} objects are readable without a restore: served directly")
        rows.append(
            {
                "restore_id": restore_id,
                "tenant": request.tenant,
                "selector": selector.describe(),
                "object_id": obj.id if obj else None,
                "request_id": request_id,
                "member": member,
                "tier": request.tier,
                "days": request.days,
                "requester": request.requester,
                "note": request.note,
                "status": status,
                "messages": messages,
                "cost": cost,
                "estimated_cost_usd": (cost or {}).get("total"),
            }
        )
        files.append(
            {
                "selector": selector.describe(),
                "status": status,
                "messages": messages,
                "storedFileUrl": _stored_url(obj, member),
                "estimatedCostUsd": (cost or {}).get("total"),
            }
        )
    store.add(rows)
    return {"restoreId": restore_id, "tenant": request.tenant, "tier": request.tier, "days": request.days, "files": files}


def _stored_url(obj: Any, member: dict[str, Any] | None) -> str | None:
    if obj is None:
        return None
    return packaging.member_url(obj.bucket, obj.key, member["name"]) if member else obj.url


def start(setup: RestoreSetup, tenant: str, run_id: str) -> RestoreReport:
    """Issue one RestoreObject per object that pending requests need (fastest tier asked, longest days).

    Each object is claimed first: one another live run holds keeps its requests PENDING for the
    next run (which joins that run's restore); a restore another run started since this one began
    is joined, not asked again.
    """
    store, report, now = setup.store, RestoreReport(tenant), utcnow()
    claims = setup.claims
    objects = sorted({row["object_id"] for row in store.rows(tenant=tenant, statuses=["PENDING"])})
    for object_id in objects:
        key = cl.claim_key(object_id)
        claim = claims.claim(cl.RESTORE, key, run_id, subject=f"object {object_id}")
        if not claim.won:
            report.left_to_others.append((store.get_object(object_id).url, claim.holder))
            continue
        try:
            _start_object(setup, tenant, object_id, run_id, now, report)
        finally:
            claims.done(cl.RESTORE, key, run_id)
    return report


def _start_object(setup: RestoreSetup, tenant: str, object_id: int, run_id: str, started: datetime, report: RestoreReport) -> None:
    """The restore of one claimed object for the tenant's requests still PENDING (read again: another run may have taken them)."""
    store, now = setup.store, utcnow()
    rows = store.rows(tenant=tenant, statuses=["PENDING"], object_id=object_id)
    if not rows:
        return
    ids = [r["id"] for r in rows]
    obj = store.get_object(object_id)
    days = max(r["days"] for r in rows)
    tier = min((r["tier"] for r in rows), key=TIER_SPEED.__getitem__)
    state = store.object_state(object_id)
    if (
        state
        and state["state"] in ("REQUESTED", "RESTORED")
        and state.get("requested_by") not in (None, run_id)
        and state["requested_at"] >= started
        and state["days"] >= days
    ):
        store.update(
            ids, status="IN_PROGRESS", run_id=run_id, add_message=f"joined the restore run {state['requested_by']} started for this object"
        )
        report.joined.append((obj.url, state["requested_by"]))
        report.already += 1
        return
    if not needs_restore(obj.storage_class):
        store.set_object_state(object_id, state="RESTORED", tier=tier, days=days, requested_at=now, restored_at=now, expires_at=None)
        store.update(ids, status="IN_PROGRESS", run_id=run_id)
        report.direct += 1
        return
    if state and state["state"] == "REQUESTED":
        store.update(ids, status="IN_PROGRESS", run_id=run_id, add_message="joined the restore already under way for this object")
        report.already += 1
        return
    if state and state["state"] == "RESTORED" and (state["expires_at"] is None or state["expires_at"] >= now + timedelta(days=days)):
        store.update(ids, status="IN_PROGRESS", run_id=run_id, add_message="already restored with enough days left")
        report.already += 1
        return
    objects = setup.objects(obj.bucket)
    try:
        head_status = objects.head(obj.key).restore
        if head_status is not None and not head_status.ongoing and head_status.expiry and head_status.expiry >= now + timedelta(days=days):
            store.set_object_state(
                object_id,
                state="RESTORED",
                tier=tier,
                days=days,
                requested_at=now,
                restored_at=now,
                expires_at=head_status.expiry,
                verified=None,
            )
            store.update(ids, status="IN_PROGRESS", run_id=run_id, add_message="already restored in S3 with enough days left")
            report.already += 1
            return
        if head_status is None or not head_status.ongoing:
            if objects.restore(obj.key, days=days, tier=tier) == "in_progress":  # RestoreAlreadyInProgress
                report.already += 1
            else:
                report.started += 1
                report.tiers[tier] = report.tiers.get(tier, 0) + 1
        else:
            report.already += 1
    except StoreError as exc:
        reason = f"restore of {obj.url} could not be started: {said(exc)}"
        store.update(ids, status="FAILED", run_id=run_id, add_message=reason)
        report.failed.extend((r["selector"], reason) for r in rows)
        return
    store.set_object_state(
        object_id,
        state="REQUESTED",
        tier=tier,
        days=days,
        requested_at=now,
        restored_at=None,
        expires_at=None,
        next_poll_at=now + next_poll_delay(0),
        poll_attempts=0,
        verified=None,
        verify_message=None,
        requested_by=run_id,
    )
    store.update(ids, status="IN_PROGRESS", run_id=run_id)
    _check_once(setup, obj, now)


def _check_once(setup: RestoreSetup, obj: Any, now: datetime) -> None:
    """One HEAD right after the request: a restore that is already done (or instant) is noticed at once."""
    try:
        status = setup.objects(obj.bucket).head(obj.key).restore
    except StoreError:
        return
    if status is not None and not status.ongoing:
        setup.store.set_object_state(obj.id, state="RESTORED", restored_at=now, expires_at=status.expiry, verified=None)


def record_event(setup: RestoreSetup, event: events.RestoreEvent) -> bool:
    """Apply one S3 restore event to the catalog; False when the object is not one of ours."""
    store = setup.store
    obj = store.object_at(event.bucket, event.key)
    if obj is None:
        return False
    if event.kind == "completed":
        store.set_object_state(
            obj.id,
            state="RESTORED",
            restored_at=utcnow(),
            expires_at=event.expiry,
            verified=None,
            verify_message=None,
            **({} if store.object_state(obj.id) else {"tier": "Standard", "days": 1, "requested_at": utcnow()}),
        )
    elif event.kind == "expired" and store.object_state(obj.id):
        store.set_object_state(obj.id, state="EXPIRED")
    return True


def poll(setup: RestoreSetup, *, limit: int = 100, now: datetime | None = None) -> tuple[int, int]:
    """Where no event queue exists: HEAD the objects whose next poll is due; returns (checked, completed).

    The delay doubles from 1 minute up to 6 hours, and a restore is declared failed only after
    twice the tier's documented maximum delay.
    """
    store, now = setup.store, now or utcnow()
    checked = completed = 0
    for obj, info in store.objects_to_poll(now, limit):
        checked += 1
        try:
            status = setup.objects(obj.bucket).head(obj.key).restore
        except StoreError as exc:
            log.warning("poll of %s failed: %s", obj.url, said(exc))
            status = None
        if status is not None and not status.ongoing:
            store.set_object_state(obj.id, state="RESTORED", restored_at=now, expires_at=status.expiry, verified=None)
            completed += 1
            continue
        attempts = info["poll_attempts"] + 1
        limit_hours = 2 * (pricing.max_restore_hours(setup.pricing, obj.storage_class, info["tier"]) if setup.pricing else 48.0)
        if now - info["requested_at"] > timedelta(hours=limit_hours):
            store.set_object_state(
                obj.id, state="FAILED", verify_message=f"not restored after {limit_hours:.0f} h (twice the documented maximum)"
            )
            continue
        store.set_object_state(obj.id, poll_attempts=attempts, next_poll_at=now + next_poll_delay(attempts))
    return checked, completed


def report_rows(setup: RestoreSetup, tenant: str | None = None) -> list[dict[str, Any]]:
    """``glacier-pipelines report --restores``: one object per file, naming the run that asked S3 for the object's restore
    (``restoreRequestedByRun``) and the run that last moved the file on (``doneByRun``: started, delivered or failed it)."""
    store = setup.store
    out = []
    states: dict[int, dict[str, Any] | None] = {}
    for r in store.rows(tenant=tenant):
        obj = store.get_object(r["object_id"]) if r["object_id"] else None
        if obj is not None and obj.id not in states:
            states[obj.id] = store.object_state(obj.id)
        state = states.get(obj.id) if obj is not None else None
        out.append(
            {
                "restoreId": r["restore_id"],
                "tenant": r["tenant"],
                "requestId": r["request_id"],
                "storedFileUrl": _stored_url(obj, r.get("member")),
                "tier": r["tier"],
                "days": r["days"],
                "requester": r["requester"],
                "status": r["status"],
                "messages": r["messages"],
                "downloadUrl": r["download_url"] if r["status"] == "READY" else None,
                "expiresAt": r["expires_at"].isoformat() if r["expires_at"] else None,
                "estimatedCostUsd": r["estimated_cost_usd"],
                "restoreRequestedByRun": (state or {}).get("requested_by"),
                "doneByRun": r["run_id"],
            }
        )
    return out


def safe_url(url: str | None) -> str | None:
    """A link as it may appear in logs or metadata: without its signature."""
    return redact_url(url) if url else None
