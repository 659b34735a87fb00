"""Delivery of restored files (verified once, a link each, the requester told) and the expiry of links and copies.

Part of :mod:`glacier_pipelines.flows.restore`, which re-exports :func:`deliver`, :func:`expire`,
:func:`expire_links`, :func:`expiry_due` and :func:`copy_key`. Each restored object is claimed
(catalog/claims.py) before it is read, so concurrent runs verify it and tell its requesters once.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from glacier_pipelines.catalog import claims as cl
from glacier_pipelines.catalog.restores import RestoreStore
from glacier_pipelines.core import checksums, notify, packaging
from glacier_pipelines.core.constants import MiB
from glacier_pipelines.core.lifecycle import RESTORED_DIR
from glacier_pipelines.core.objectstore import StoreError
from glacier_pipelines.core.lifecycle import RESTORED_COPY_TAG
from glacier_pipelines.core.objectstore.s3 import answers
from glacier_pipelines.core.restores import link_lifetime, utcnow
from glacier_pipelines.flows.restore_setup import RestoreReport, RestoreSetup, fall_back
from glacier_pipelines.flows.store_faults import said

log = logging.getLogger(__name__)


def _verify_restored(setup: RestoreSetup, obj: Any) -> tuple[bool, str]:
    """Stream the restored object once and compare its SHA-256 with the catalog."""
    digest, size = hashlib.sha256(), 0
    try:
        # answers(): the port wraps the GET, not yet errors while its body streams (a read timeout, a reset connection)
        with setup.objects(obj.bucket).get(obj.key) as body, answers("GetObject", obj.key):
            for chunk in body.iter_chunks(MiB):
                digest.update(chunk)
                size += len(chunk)
    except StoreError as exc:
        return False, f"restored object could not be read: {said(exc)}"
    if digest.hexdigest() != obj.sha256 or size != obj.size:
        return (
            False,
            f"restored bytes differ from the catalog: sha256 {digest.hexdigest()} ({size} bytes), archived {obj.sha256} ({obj.size} bytes)",
        )
    return True, "restored bytes match the catalog (sha256)"


def deliver(setup: RestoreSetup, tenant: str, run_id: str) -> RestoreReport:
    """Verify each restored object, then hand out links and tell requesters; expire what has lapsed.

    Each restored object is claimed first, so concurrent runs verify it, copy its members and tell its requesters once.
    """
    store, report, now = setup.store, RestoreReport(tenant), utcnow()
    claims = setup.claims
    ready_rows: list[tuple[dict[str, Any], Any]] = []
    for object_id in sorted({row["object_id"] for row in store.rows(tenant=tenant, statuses=["IN_PROGRESS"])}):
        state = store.object_state(object_id)
        if state is None or state["state"] == "REQUESTED":
            continue
        key = cl.claim_key(object_id)
        claim = claims.claim(cl.DELIVERY, key, run_id, subject=f"object {object_id}")
        if not claim.won:
            report.left_to_others.append((store.get_object(object_id).url, claim.holder))
            continue
        try:
            _deliver_object(setup, tenant, object_id, run_id, now, report, ready_rows)
        finally:
            claims.done(cl.DELIVERY, key, run_id)
    report.notified = _notify(setup, ready_rows)
    report.expired = expire_links(setup, tenant, now)
    return report


def _deliver_object(
    setup: RestoreSetup,
    tenant: str,
    object_id: int,
    run_id: str,
    now: datetime,
    report: RestoreReport,
    ready_rows: list[tuple[dict[str, Any], Any]],
) -> None:
    """Deliver the tenant's files of one claimed object still IN_PROGRESS (read again: another run may have delivered them)."""
    store = setup.store
    rows = store.rows(tenant=tenant, statuses=["IN_PROGRESS"], object_id=object_id)
    state = store.object_state(object_id)
    if not rows or state is None or state["state"] == "REQUESTED":
        return
    ids = [r["id"] for r in rows]
    if state["state"] in ("FAILED", "EXPIRED"):
        store.update(ids, status="FAILED", run_id=run_id, add_message=state.get("verify_message") or f"restore {state['state'].lower()}")
        report.failed.extend((r["selector"], "restore failed") for r in rows)
        return
    obj = store.get_object(object_id)
    members = [r for r in rows if r.get("member")]
    if members:
        _deliver_members(setup, obj, state, members, run_id, now, report, ready_rows)
        rows = [r for r in rows if not r.get("member")]
        ids = [r["id"] for r in rows]
        if not rows:
            return
    if state["verified"] is None:
        ok, message = _verify_restored(setup, obj)
        store.set_object_state(object_id, verified=ok, verify_message=message)
        state["verified"], state["verify_message"] = ok, message
        report.verified += 1
    if not state["verified"]:
        report.mismatched.append((obj.url, state["verify_message"]))
        left = fall_back(setup, rows, obj, state["verify_message"], run_id)
        store.update([r["id"] for r in left], status="FAILED", run_id=run_id, add_message=state["verify_message"])
        return
    seconds = link_lifetime(now, state["expires_at"], setup.max_link_seconds)
    if seconds <= 0:
        store.update(ids, status="EXPIRED", run_id=run_id, add_message="the restored copy expired before it could be delivered")
        return
    url = setup.objects(obj.bucket).presign(obj.key, expires_in=seconds)
    expires_at = now + timedelta(seconds=seconds)
    store.update(ids, status="READY", run_id=run_id, ready_at=now, expires_at=expires_at, download_url=url)
    for r in rows:
        ready_rows.append(({**r, "download_url": url, "expires_at": expires_at}, obj))
    report.ready += len(rows)


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
                setup.objects(obj.bucket).delete(key)
            except StoreError as exc:
                log.warning(
                    "restore %s: restored copy s3://%s/%s not deleted, tried again next run: %s",
                    row["restore_id"],
                    obj.bucket,
                    key,
                    said(exc),
                )
                failed += 1
                continue
            deleted += 1
            message = f"the download link expired and the restored copy s3://{obj.bucket}/{key} was deleted"
        store.update([row["id"]], status="EXPIRED", download_url=None, add_message=message)
        expired += 1
    return expired, deleted, failed


def expiry_due(store: RestoreStore, tenant: str, now: datetime) -> bool:
    """Whether the tenant has a link or a restored copy past its expiry (restore_expiry_schedule runs only those)."""
    return any(r["expires_at"] and r["expires_at"] <= now for r in store.rows(tenant=tenant, statuses=["READY"])) or any(
        e is not None and e <= now for _, e in store.restored_copies(tenant)
    )


def expire(setup: RestoreSetup, tenant: str, now: datetime | None = None) -> dict[str, int]:
    """What restore_expiry_schedule does: lapsed links retired (the STANDARD copies of package members behind them deleted),
    and restored copies past their expiry marked EXPIRED (so a later request for the object asks S3 again instead of
    trusting a copy that is gone)."""
    store, now = setup.store, now or utcnow()
    links, deleted, failed = _expire_links(setup, tenant, now)
    copies = [oid for oid, expires_at in store.restored_copies(tenant) if expires_at is not None and expires_at <= now]
    for object_id in copies:
        store.set_object_state(object_id, state="EXPIRED")
    return {
        "links_expired": links,
        "copies_expired": len(copies),
        "member_copies_deleted": deleted,
        "member_copies_not_deleted": failed,
        "still_ready": len(store.rows(tenant=tenant, statuses=["READY"])),
    }


def _deliver_members(
    setup: RestoreSetup,
    obj: Any,
    state: dict[str, Any],
    rows: list[dict[str, Any]],
    run_id: str,
    now: datetime,
    report: RestoreReport,
    ready_rows: list[tuple[dict[str, Any], Any]],
) -> None:
    """Extract asked members of a restored package with ranged GETs, verify each, and hand out a link to a copy of it.

    A pre-signed URL cannot carry a Range, so each verified member is copied (STANDARD) under
    ``restored/<restore id>/`` beside the tenant's archive; the link points at that copy.
    """
    store, objects = setup.store, setup.objects(obj.bucket)
    seconds = link_lifetime(now, state["expires_at"], setup.max_link_seconds)
    for row in rows:
        member = row["member"]
        end = member["offset"] + member["length"] - 1
        try:
            data = b""
            if member["length"]:
                # answers(): the port wraps the GET, not yet errors while its body streams
                with objects.get(obj.key, byte_range=(member["offset"], end)) as body, answers("GetObject", obj.key):
                    data = body.read()
        except StoreError as exc:
            store.update(
                [row["id"]], status="FAILED", run_id=run_id, add_message=f"member could not be read from the restored package: {said(exc)}"
            )
            report.failed.append((row["selector"], said(exc)))
            continue
        actual = hashlib.sha256(data).hexdigest()
        report.verified += 1
        if actual != member["sha256"] or len(data) != member["length"]:
            message = f"restored bytes differ from the catalog: member {member['name']} hashes to {actual}, archived {member['sha256']}"
            store.set_object_state(obj.id, verified=False, verify_message=message)
            report.mismatched.append((packaging.member_url(obj.bucket, obj.key, member["name"]), message))
            if fall_back(setup, [row], obj, message, run_id, member=member["name"]):
                store.update([row["id"]], status="FAILED", run_id=run_id, add_message=message)
            continue
        store.set_object_state(obj.id, verified=True, verify_message="restored members match the catalog (sha256)")
        if seconds <= 0:  # checked before copying: a copy nobody can be sent a link to would only cost money
            store.update([row["id"]], status="EXPIRED", run_id=run_id, add_message="the restored copy expired before it could be delivered")
            continue
        key = copy_key(obj.key, row["restore_id"], member["name"])
        # the tag marks the copy for the lifecycle backstop (deleted even if no expiry pass runs)
        objects.put(
            key,
            data,
            storage_class="STANDARD",
            checksum_algorithm="SHA256",
            checksum=checksums.b64(bytes.fromhex(actual)),
            tags=dict([RESTORED_COPY_TAG]),
        )
        url = objects.presign(key, expires_in=seconds)
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
        files = [
            {"name": obj.url, "url": row["download_url"], "expires_at": row["expires_at"], "estimated_cost_usd": row["estimated_cost_usd"]}
            for row, obj in items
        ]
        message = notify.ready_message(
            sender=setup.sender, to=requester, restore_id=restore_id, tenant=items[0][0]["tenant"], files=files, note=items[0][0]["note"]
        )
        try:
            setup.send_email(message)
        except OSError as exc:  # smtplib errors are OSErrors; the link stays in the catalog, retried next time
            log.warning("restore %s: could not email %s: %s", restore_id, requester, exc)
            continue
        setup.store.update([row["id"] for row, _ in items], notified_at=utcnow())
        log.info("restore %s: notified %s", restore_id, requester)
        sent += 1
    return sent
