"""Restore steps: accept a request, start one S3 restore per object, notice completion, deliver verified links.

State lives in the catalog (``restores`` per file, ``object_restores`` per object), so every
step can run again and only does what is left.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.catalog.restores import RestoreStore
from glacier_pipelines.core import checksums, events, notify, packaging, pricing
from glacier_pipelines.core.lifecycle import RESTORED_COPY_TAG, RESTORED_DIR
from glacier_pipelines.core.restores import (
    RestoreRequest,
    link_lifetime,
    needs_restore,
    next_poll_delay,
    tier_refusal,
    utcnow,
)
from glacier_pipelines.core.sources import redact_url
from glacier_pipelines.flows import locations

log = logging.getLogger(__name__)
TIER_SPEED = {"Expedited": 0, "Standard": 1, "Bulk": 2}
RESTORED_COPY_TAGGING = f"{RESTORED_COPY_TAG[0]}={RESTORED_COPY_TAG[1]}"  # what the lifecycle backstop selects


@dataclass
class RestoreSetup:
    catalog: Catalog
    s3: Any
    pricing: pricing.Pricing | None
    send_email: Callable[[Any], None] | None  # None: no SMTP configured (the link stays in the catalog and report)
    sender: str = "glacier-pipelines@localhost"
    max_link_seconds: int = 7 * 24 * 3600

    @property
    def store(self) -> RestoreStore:
        return RestoreStore(self.catalog)


@dataclass
class RestoreReport:
    tenant: str
    started: int = 0
    already: int = 0
    direct: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    verified: int = 0
    mismatched: list[tuple[str, str]] = field(default_factory=list)
    ready: int = 0
    notified: int = 0
    expired: int = 0
    tiers: dict[str, int] = field(default_factory=dict)


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
            alt = _sound_copy(setup, request.tenant, obj, member)
            if alt is not None:
                messages.append(f"the copy at {_stored_url(obj, member)} was found missing or corrupt; "
                                f"the same content at {alt.url} is restored instead")
                obj, member = alt.object, _restore_member(alt)
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
        rows.append({
            "restore_id": restore_id, "tenant": request.tenant, "selector": selector.describe(), "object_id": obj.id if obj else None,
            "request_id": request_id, "member": member, "tier": request.tier, "days": request.days, "requester": request.requester,
            "note": request.note, "status": status, "messages": messages, "cost": cost,
            "estimated_cost_usd": (cost or {}).get("total"),
        })
        files.append({"selector": selector.describe(), "status": status, "messages": messages,
                      "storedFileUrl": _stored_url(obj, member), "estimatedCostUsd": (cost or {}).get("total")})
    store.add(rows)
    return {"restoreId": restore_id, "tenant": request.tenant, "tier": request.tier, "days": request.days, "files": files}


def _restore_member(location: locations.Location) -> dict[str, Any] | None:
    m = location.member
    return None if m is None else {"name": m["name"], "offset": m["offset"], "length": m["length"], "sha256": m["sha256"]}


def _sound_copy(setup: RestoreSetup, tenant: str, obj: Any, member: dict[str, Any] | None) -> locations.Location | None:
    """Another location of the same content that S3 still holds (the content index with fallback)."""
    return locations.locate(setup.catalog, setup.s3, tenant, sha256=member["sha256"] if member else obj.sha256)


def _fall_back(setup: RestoreSetup, rows: list[dict[str, Any]], obj: Any, reason: str, run_id: str, member: str = "") -> list[dict[str, Any]]:
    """Flag a location whose restored bytes were bad and point its rows at another copy; returns the rows left without one."""
    locations.flag(setup.catalog, obj, reason, member)
    left = []
    for row in rows:
        alt = _sound_copy(setup, row["tenant"], obj, row.get("member"))
        if alt is None:
            left.append(row)
            continue
        setup.store.update([row["id"]], status="PENDING", run_id=run_id, object_id=alt.object.id, member=_restore_member(alt),
                           add_message=f"{reason}; the same content at {alt.url} is restored instead")
    return left


def _stored_url(obj: Any, member: dict[str, Any] | None) -> str | None:
    if obj is None:
        return None
    return packaging.member_url(obj.bucket, obj.key, member["name"]) if member else obj.url


def start(setup: RestoreSetup, tenant: str, run_id: str) -> RestoreReport:
    """Issue one RestoreObject per object that pending requests need (fastest tier asked, longest days)."""
    store, report, now = setup.store, RestoreReport(tenant), utcnow()
    by_object: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in store.rows(tenant=tenant, statuses=["PENDING"]):
        by_object[row["object_id"]].append(row)
    for object_id, rows in by_object.items():
        ids = [r["id"] for r in rows]
        obj = store.get_object(object_id)
        days = max(r["days"] for r in rows)
        tier = min((r["tier"] for r in rows), key=TIER_SPEED.__getitem__)
        if not needs_restore(obj.storage_class):
            store.set_object_state(object_id, state="RESTORED", tier=tier, days=days, requested_at=now, restored_at=now, expires_at=None)
            store.update(ids, status="IN_PROGRESS", run_id=run_id)
            report.direct += 1
            continue
        state = store.object_state(object_id)
        if state and state["state"] == "REQUESTED":
            store.update(ids, status="IN_PROGRESS", run_id=run_id, add_message="joined the restore already under way for this object")
            report.already += 1
            continue
        if state and state["state"] == "RESTORED" and (state["expires_at"] is None or state["expires_at"] >= now + timedelta(days=days)):
            store.update(ids, status="IN_PROGRESS", run_id=run_id, add_message="already restored with enough days left")
            report.already += 1
            continue
        try:
            head_status = events.parse_restore_header(setup.s3.head_object(Bucket=obj.bucket, Key=obj.key).get("Restore"))
            if head_status is not None and not head_status.ongoing and head_status.expiry and head_status.expiry >= now + timedelta(days=days):
                store.set_object_state(object_id, state="RESTORED", tier=tier, days=days, requested_at=now, restored_at=now,
                                       expires_at=head_status.expiry, verified=None)
                store.update(ids, status="IN_PROGRESS", run_id=run_id, add_message="already restored in S3 with enough days left")
                report.already += 1
                continue
            if head_status is None or not head_status.ongoing:
                try:
                    setup.s3.restore_object(Bucket=obj.bucket, Key=obj.key,
                                            RestoreRequest={"Days": days, "GlacierJobParameters": {"Tier": tier}})
                    report.started += 1
                    report.tiers[tier] = report.tiers.get(tier, 0) + 1
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") != "RestoreAlreadyInProgress":
                        raise
                    report.already += 1
            else:
                report.already += 1
        except (ClientError, BotoCoreError, events.EventParseError) as exc:
            reason = f"restore of {obj.url} could not be started: {exc}"
            store.update(ids, status="FAILED", run_id=run_id, add_message=reason)
            report.failed.extend((r["selector"], reason) for r in rows)
            continue
        store.set_object_state(object_id, state="REQUESTED", tier=tier, days=days, requested_at=now, restored_at=None,
                               expires_at=None, next_poll_at=now + next_poll_delay(0), poll_attempts=0, verified=None, verify_message=None)
        store.update(ids, status="IN_PROGRESS", run_id=run_id)
        _check_once(setup, obj, now)

    return report


def _check_once(setup: RestoreSetup, obj: Any, now: datetime) -> None:
    """One HEAD right after the request: a restore that is already done (or instant) is noticed at once."""
    try:
        status = events.parse_restore_header(setup.s3.head_object(Bucket=obj.bucket, Key=obj.key).get("Restore"))
    except (ClientError, BotoCoreError, events.EventParseError):
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
        store.set_object_state(obj.id, state="RESTORED", restored_at=utcnow(), expires_at=event.expiry, verified=None, verify_message=None,
                               **({} if store.object_state(obj.id) else {"tier": "Standard", "days": 1, "requested_at": utcnow()}))
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
            status = events.parse_restore_header(setup.s3.head_object(Bucket=obj.bucket, Key=obj.key).get("Restore"))
        except (ClientError, BotoCoreError, events.EventParseError) as exc:
            log.warning("poll of %s failed: %s", obj.url, exc)
            status = None
        if status is not None and not status.ongoing:
            store.set_object_state(obj.id, state="RESTORED", restored_at=now, expires_at=status.expiry, verified=None)
            completed += 1
            continue
        attempts = info["poll_attempts"] + 1
        limit_hours = 2 * (pricing.max_restore_hours(setup.pricing, obj.storage_class, info["tier"]) if setup.pricing else 48.0)
        if now - info["requested_at"] > timedelta(hours=limit_hours):
            store.set_object_state(obj.id, state="FAILED", verify_message=f"not restored after {limit_hours:.0f} h (twice the documented maximum)")
            continue
        store.set_object_state(obj.id, poll_attempts=attempts, next_poll_at=now + next_poll_delay(attempts))
    return checked, completed


def _verify_restored(setup: RestoreSetup, obj: Any) -> tuple[bool, str]:
    """Stream the restored object once and compare its SHA-256 with the catalog."""
    try:
        body = setup.s3.get_object(Bucket=obj.bucket, Key=obj.key)["Body"]
        digest, size = hashlib.sha256(), 0
        for chunk in body.iter_chunks(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    except (ClientError, BotoCoreError) as exc:
        return False, f"restored object could not be read: {exc}"
    if digest.hexdigest() != obj.sha256 or size != obj.size:
        return False, f"restored bytes differ from the catalog: sha256 {digest.hexdigest()} ({size} bytes), archived {obj.sha256} ({obj.size} bytes)"
    return True, "restored bytes match the catalog (sha256)"


def deliver(setup: RestoreSetup, tenant: str, run_id: str) -> RestoreReport:
    """Verify each restored object, then hand out links and tell requesters; expire what has lapsed."""
    store, report, now = setup.store, RestoreReport(tenant), utcnow()
    waiting: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in store.rows(tenant=tenant, statuses=["IN_PROGRESS"]):
        waiting[row["object_id"]].append(row)
    ready_rows: list[tuple[dict[str, Any], Any]] = []
    for object_id, rows in waiting.items():
        state = store.object_state(object_id)
        ids = [r["id"] for r in rows]
        if state is None or state["state"] == "REQUESTED":
            continue
        if state["state"] in ("FAILED", "EXPIRED"):
            store.update(ids, status="FAILED", run_id=run_id, add_message=state.get("verify_message") or f"restore {state['state'].lower()}")
            report.failed.extend((r["selector"], "restore failed") for r in rows)
            continue
        obj = store.get_object(object_id)
        members = [r for r in rows if r.get("member")]
        if members:
            _deliver_members(setup, obj, state, members, run_id, now, report, ready_rows)
            rows = [r for r in rows if not r.get("member")]
            ids = [r["id"] for r in rows]
            if not rows:
                continue
        if state["verified"] is None:
            ok, message = _verify_restored(setup, obj)
            store.set_object_state(object_id, verified=ok, verify_message=message)
            state["verified"], state["verify_message"] = ok, message
            report.verified += 1
        if not state["verified"]:
            report.mismatched.append((obj.url, state["verify_message"]))
            left = _fall_back(setup, rows, obj, state["verify_message"], run_id)
            store.update([r["id"] for r in left], status="FAILED", run_id=run_id, add_message=state["verify_message"])
            continue
        seconds = link_lifetime(now, state["expires_at"], setup.max_link_seconds)
        if seconds <= 0:
            store.update(ids, status="EXPIRED", run_id=run_id, add_message="the restored copy expired before it could be delivered")
            continue
        url = setup.s3.generate_presigned_url("get_object", Params={"Bucket": obj.bucket, "Key": obj.key}, ExpiresIn=seconds)
        expires_at = now + timedelta(seconds=seconds)
        store.update(ids, status="READY", run_id=run_id, ready_at=now, expires_at=expires_at, download_url=url)
        for r in rows:
            ready_rows.append(({**r, "download_url": url, "expires_at": expires_at}, obj))
        report.ready += len(rows)
    report.notified = _notify(setup, ready_rows)
    report.expired = expire_links(setup, tenant, now)
    return report


def copy_key(package_key: str, restore_id: str, member_name: str) -> str:
    """Where delivery copies a restored package member for its link: ``<tenant prefix>/restored/<restore id>/<member>``."""
    return f"{package_key.rsplit('/packages/', 1)[0]}/{RESTORED_DIR}/{restore_id}/{member_name}"


def expire_links(setup: RestoreSetup, tenant: str, now: datetime | None = None) -> int:
    """READY rows whose link has lapsed become EXPIRED and lose their link; returns how many."""
    return _expire_links(setup, tenant, now or utcnow())[0]


def _expire_links(setup: RestoreSetup, tenant: str, now: datetime) -> tuple[int, int, int]:
    """Lapsed links retired and the STANDARD copies behind them deleted: (rows expired, copies deleted, copies not deleted).

    A row whose copy cannot be deleted stays READY (its link has lapsed anyway), so the next run tries again;
    the lifecycle backstop (``core.lifecycle.restored_copies_rule``) removes it if every try fails.
    """
    store = setup.store
    expired = deleted = failed = 0
    for row in store.rows(tenant=tenant, statuses=["READY"]):
        if not row["expires_at"] or row["expires_at"] > now:
            continue
        message = "the download link and restored copy have expired"
        if row.get("member"):
            obj = store.get_object(row["object_id"])
            key = copy_key(obj.key, row["restore_id"], row["member"]["name"])
            try:
                setup.s3.delete_object(Bucket=obj.bucket, Key=key)
            except (ClientError, BotoCoreError) as exc:
                log.warning("restore %s: restored copy s3://%s/%s not deleted, tried again next run: %s",
                            row["restore_id"], obj.bucket, key, exc)
                failed += 1
                continue
            deleted += 1
            message = f"the download link expired and the restored copy s3://{obj.bucket}/{key} was deleted"
        store.update([row["id"]], status="EXPIRED", download_url=None, add_message=message)
        expired += 1
    return expired, deleted, failed


def expiry_due(store: RestoreStore, tenant: str, now: datetime) -> bool:
    """Whether the tenant has a link or a restored copy past its expiry (restore_expiry_schedule runs only those)."""
    return (any(r["expires_at"] and r["expires_at"] <= now for r in store.rows(tenant=tenant, statuses=["READY"]))
            or any(e is not None and e <= now for _, e in store.restored_copies(tenant)))


def expire(setup: RestoreSetup, tenant: str, now: datetime | None = None) -> dict[str, int]:
    """What restore_expiry_schedule does: lapsed links retired (the STANDARD copies of package members behind them deleted),
    and restored copies past their expiry marked EXPIRED (so a later request for the object asks S3 again instead of
    trusting a copy that is gone)."""
    store, now = setup.store, now or utcnow()
    links, deleted, failed = _expire_links(setup, tenant, now)
    copies = [oid for oid, expires_at in store.restored_copies(tenant) if expires_at is not None and expires_at <= now]
    for object_id in copies:
        store.set_object_state(object_id, state="EXPIRED")
    return {"links_expired": links, "copies_expired": len(copies), "member_copies_deleted": deleted,
            "member_copies_not_deleted": failed, "still_ready": len(store.rows(tenant=tenant, statuses=["READY"]))}


def _deliver_members(setup: RestoreSetup, obj: Any, state: dict[str, Any], rows: list[dict[str, Any]], run_id: str, now: datetime,
                     report: RestoreReport, ready_rows: list[tuple[dict[str, Any], Any]]) -> None:
    """Extract asked members of a restored package with ranged GETs, verify each, and hand out a link to a copy of it.

    A pre-signed URL cannot carry a Range, so each verified member is copied (STANDARD) under
    ``restored/<restore id>/`` beside the tenant's archive; the link points at that copy.
    """
    store = setup.store
    seconds = link_lifetime(now, state["expires_at"], setup.max_link_seconds)
    for row in rows:
        member = row["member"]
        end = member["offset"] + member["length"] - 1
        try:
            data = setup.s3.get_object(Bucket=obj.bucket, Key=obj.key, Range=f"bytes={member['offset']}-{end}")["Body"].read() \
                if member["length"] else b""
        except (ClientError, BotoCoreError) as exc:
            store.update([row["id"]], status="FAILED", run_id=run_id, add_message=f"member could not be read from the restored package: {exc}")
            report.failed.append((row["selector"], str(exc)))
            continue
        actual = hashlib.sha256(data).hexdigest()
        report.verified += 1
        if actual != member["sha256"] or len(data) != member["length"]:
            message = f"restored bytes differ from the catalog: member {member['name']} hashes to {actual}, archived {member['sha256']}"
            store.set_object_state(obj.id, verified=False, verify_message=message)
            report.mismatched.append((packaging.member_url(obj.bucket, obj.key, member["name"]), message))
            if _fall_back(setup, [row], obj, message, run_id, member=member["name"]):
                store.update([row["id"]], status="FAILED", run_id=run_id, add_message=message)
            continue
        store.set_object_state(obj.id, verified=True, verify_message="restored members match the catalog (sha256)")
        if seconds <= 0:  # checked before copying: a copy nobody can be sent a link to would only cost money
            store.update([row["id"]], status="EXPIRED", run_id=run_id, add_message="the restored copy expired before it could be delivered")
            continue
        key = copy_key(obj.key, row["restore_id"], member["name"])
        setup.s3.put_object(Bucket=obj.bucket, Key=key, Body=data, StorageClass="STANDARD", ChecksumAlgorithm="SHA256",
                            ChecksumSHA256=checksums.b64(bytes.fromhex(actual)), Tagging=RESTORED_COPY_TAGGING)
        url = setup.s3.generate_presigned_url("get_object", Params={"Bucket": obj.bucket, "Key": key}, ExpiresIn=seconds)
        expires_at = now + timedelta(seconds=seconds)
        store.update([row["id"]], status="READY", run_id=run_id, ready_at=now, expires_at=expires_at, download_url=url)
        ready_rows.append(({**row, "download_url": url, "expires_at": expires_at}, obj))
        report.ready += 1


def _notify(setup: RestoreSetup, ready_rows: list[tuple[dict[str, Any], Any]]) -> int:
    by_request: dict[tuple[str, str], list[tuple[dict[str, Any], Any]]] = defaultdict(list)
    for row, obj in ready_rows:
        by_request[(row["restore_id"], row["requester"])].append((row, obj))
    sent = 0
    for (restore_id, requester), items in by_request.items():
        if setup.send_email is None:
            log.info("restore %s ready; no SMTP server configured, so %s is not emailed (see `report --restores`)", restore_id, requester)
            continue
        if requester.endswith(".invalid"):  # RFC 2606: never deliverable (restoration requests over AMQP are answered there)
            continue
        files = [{"name": obj.url, "url": row["download_url"], "expires_at": row["expires_at"],
                  "estimated_cost_usd": row["estimated_cost_usd"]} for row, obj in items]
        message = notify.ready_message(sender=setup.sender, to=requester, restore_id=restore_id, tenant=items[0][0]["tenant"],
                                       files=files, note=items[0][0]["note"])
        try:
            setup.send_email(message)
        except OSError as exc:  # smtplib errors are OSErrors; the link stays in the catalog, retried next time
            log.warning("restore %s: could not email %s: %s", restore_id, requester, exc)
            continue
        setup.store.update([row["id"] for row, _ in items], notified_at=utcnow())
        log.info("restore %s: notified %s", restore_id, requester)
        sent += 1
    return sent


def report_rows(setup: RestoreSetup, tenant: str | None = None) -> list[dict[str, Any]]:
    """``glacier-pipelines report --restores``: one object per file."""
    store = setup.store
    out = []
    for r in store.rows(tenant=tenant):
        obj = store.get_object(r["object_id"]) if r["object_id"] else None
        out.append({
            "restoreId": r["restore_id"], "tenant": r["tenant"], "requestId": r["request_id"],
            "storedFileUrl": _stored_url(obj, r.get("member")), "tier": r["tier"], "days": r["days"], "requester": r["requester"],
            "status": r["status"], "messages": r["messages"], "downloadUrl": r["download_url"] if r["status"] == "READY" else None,
            "expiresAt": r["expires_at"].isoformat() if r["expires_at"] else None, "estimatedCostUsd": r["estimated_cost_usd"],
        })
    return out


def safe_url(url: str | None) -> str | None:
    """A link as it may appear in logs or metadata: without its signature."""
    return redact_url(url) if url else None
