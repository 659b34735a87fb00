"""The operators' soft delete: ``trash`` marks a file for deletion after a grace period, ``untrash`` takes it back before then.

- **Every file can be trashed**: standalone objects in any class, and package members. The file
  becomes TRASHED in the catalog with a deadline (``GLACIER_TRASH_GRACE_DAYS``). Requests about
  it answer as before: restores, availability and deletion requests by request id or URL work.
- **S3 changes only where S3 can copy.** A readable standalone object (STANDARD, GLACIER_IR) under
  the tenant's own prefix moves under the trash prefix at once, as before (``flows/moves.trash``).
  A GLACIER or DEEP_ARCHIVE object cannot be copied without a restore, and a package is not
  taken apart: those stay where they are until the grace period ends, and stay a dedupe target
  (a new request for the same content is one more reference, which the purge respects; storing
  the bytes again would overwrite them at their content-addressed key, early deletion included).
- **Untrash** within the grace period gives back the previous state: the digests return to the
  content index, and a moved object is copied back to its key.
- **After the grace period** ``purge_due`` (asset ``trash_purge``, daily schedule) runs the same
  safe-deletion path as a deletion request (``deletion.remove``): bytes go with their last
  reference, a package member is marked deleted (compaction or the last member removes the
  package), the early-deletion charge is recorded in ``deletions`` for the cost report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.catalog import moves as mv
from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.moves import MoveStore
from glacier_pipelines.catalog.trash import CATALOG, MOVED, PURGED, TrashStore
from glacier_pipelines.catalog.worker_requests import WorkerRequestStore
from glacier_pipelines.core import faults, keys
from glacier_pipelines.core.constants import UNREADABLE_CLASSES
from glacier_pipelines.core.moves import MoveError
from glacier_pipelines.core.packaging import member_url
from glacier_pipelines.flows import deletion

log = logging.getLogger(__name__)
TRASHED, SKIPPED, RESTORED = "TRASHED", "SKIPPED", "RESTORED"


@dataclass
class TrashSetup:
    catalog: Catalog
    deletion: deletion.DeletionSetup  # the safe-deletion path, once a file's grace period is over
    grace: timedelta = timedelta(days=30)
    move: Any = None  # a flows.moves.MoveSetup: readable objects move under the trash prefix; None: every trash is a mark


@dataclass
class PurgeReport:
    purged: list[str] = field(default_factory=list)  # request ids deleted
    waiting: list[str] = field(default_factory=list)  # request id: why it waits for the next pass
    objects_deleted: int = 0
    bytes_deleted: int = 0
    early_deletion_usd: float = 0.0


def _refused(tenant: str, request_id: str) -> MoveError:
    return MoveError(f"tenant {tenant} has no archived file with request id {request_id!r}")


def _row(request_id: str, url: str, status: str, messages: list[str], obj: Any, **extra: Any) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "source": url,
        "destination": url,
        "status": status,
        "storageClass": obj.storage_class,
        "sizeInBytes": obj.size,
        "messages": messages,
        **extra,
    }


def _movable(setup: TrashSetup, tenant: str, obj: Any) -> bool:
    """Whether S3 can move this standalone object under the tenant's trash prefix now (readable, in the move setup's bucket)."""
    if setup.move is None or obj.storage_class in UNREADABLE_CLASSES:
        return False
    return obj.bucket == setup.move.bucket and obj.key.startswith(setup.move.lifecycle.tenant(tenant).own_prefix)


def trash(
    setup: TrashSetup, tenant: str, request_id: str, *, verification: str = "trust-s3", now: datetime | None = None
) -> dict[str, Any]:
    """Put one archived file in the trash until ``now + grace``; raises MoveError for an unknown (or another tenant's) file."""
    keys.validate_tenant(tenant)
    now = now or datetime.now(timezone.utc)
    store = TrashStore(setup.catalog)
    req, obj, member = store.request(tenant, request_id)
    if req is None or req["status"] != t.SUCCESS or obj is None:
        raise _refused(tenant, request_id)
    url = member_url(obj.bucket, obj.key, member["name"]) if member else obj.url
    held = store.open_row(req["id"])
    if held is not None or request_id in MoveStore(setup.catalog).trashed_requests(tenant):
        until = f" until {held['deadline'].isoformat()}" if held else ""
        return _row(request_id, url, SKIPPED, [f"request {request_id} is already in the trash{until}"], obj)
    deadline = now + setup.grace
    after = f"until {deadline.isoformat()}, then deleted by the safe-deletion path (untrash before then to keep it)"
    others = store.others_using(obj.id, req["id"])
    if member is not None:
        message = f"package member: marked in the trash {after}; the package is not taken apart (no S3 change now)"
        store.trash(tenant=tenant, request=req, obj=obj, member=member["name"], deadline=deadline, how=CATALOG, messages=[message])
        return _row(request_id, url, TRASHED, [message], obj, deadline=deadline.isoformat())
    if not _movable(setup, tenant, obj):
        if others:
            message = f"object kept at {url}: still used by request(s) {', '.join(others[:10])}; this file is in the trash {after}"
        elif obj.storage_class in UNREADABLE_CLASSES:
            message = (
                f"{obj.storage_class}: marked in the trash {after}; S3 copies such objects only from a restored copy, "
                "so the object stays where it is"
            )
        else:
            message = f"marked in the trash {after}; the object stays where it is (outside the trash prefix's bucket)"
        store.trash(tenant=tenant, request=req, obj=obj, member=None, deadline=deadline, how=CATALOG, messages=[message])
        return _row(request_id, url, TRASHED, [message], obj, deadline=deadline.isoformat())
    from glacier_pipelines.flows import moves as move_flow

    # Readable: today's soft delete, which moves the object once its last request is trashed (and marks the others).
    out = move_flow.trash(setup.move, tenant, request_id, verification=verification)
    withdrawn = next(
        (
            r["checksums"]
            for r in reversed(MoveStore(setup.catalog).rows(tenant, mv.TRASH))
            if r["request_id"] == request_id and r["checksums"]
        ),
        None,
    )
    message = f"in the trash {after}"
    store.trash(
        tenant=tenant,
        request=req,
        obj=obj,
        member=None,
        deadline=deadline,
        how=MOVED if out.status == move_flow.MOVED else CATALOG,
        withdrawn=withdrawn,
        original_key=obj.key,
        messages=out.messages + [message],
    )
    return {"requestId": request_id, **out.as_dict(), "messages": out.messages + [message], "deadline": deadline.isoformat()}


def untrash(setup: TrashSetup, tenant: str, request_id: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Take a file out of the trash before its deadline: the state before ``trash`` comes back; raises MoveError otherwise."""
    keys.validate_tenant(tenant)
    now = now or datetime.now(timezone.utc)
    store = TrashStore(setup.catalog)
    req, obj, member = store.request(tenant, request_id)
    row = store.open_row(req["id"]) if req is not None else None
    if row is None or obj is None:
        raise MoveError(f"tenant {tenant} has no file in the trash with request id {request_id!r}")
    if now >= row["deadline"]:
        raise MoveError(
            f"request {request_id}: its grace period ended at {row['deadline'].isoformat()}; "
            "it is deleted by the next trash_purge and can no longer be untrashed"
        )
    messages = []
    for moved in store.moved_rows(obj.id):  # the object lies under the trash prefix: copied back to its key first
        if setup.move is None:
            raise MoveError(f"{obj.url} was moved under the trash prefix: untrash needs the move settings (GLACIER_LIFECYCLE_CONFIG)")
        from glacier_pipelines.flows import moves as move_flow

        out = move_flow.move_object(
            setup.move,
            tenant=tenant,
            bucket=obj.bucket,
            key=obj.key,
            dest_bucket=obj.bucket,
            dest_key=moved["original_key"],
            storage_class=obj.storage_class,
            verification="trust-s3",
            kind=mv.MOVE,
            request_id=moved["request_id"],
        )
        store.moved_back(moved["id"], tenant, moved["request_id"])
        messages += out.messages + [f"moved back to s3://{obj.bucket}/{moved['original_key']}"]
        obj = store.request(tenant, request_id)[1] or obj
    url = member_url(obj.bucket, obj.key, member["name"]) if member else obj.url
    messages.append(f"taken out of the trash before its deadline {row['deadline'].isoformat()}")
    store.untrash(row["id"], messages[-1])
    return _row(request_id, url, RESTORED, messages, obj)


def purge_due(setup: TrashSetup, *, now: datetime | None = None, limit: int = 200, tenant: str | None = None) -> PurgeReport:
    """Delete the files whose grace period is over through the safe-deletion path; one that fails waits for the next pass."""
    now = now or datetime.now(timezone.utc)
    trash_store, store, report = TrashStore(setup.catalog), WorkerRequestStore(setup.catalog), PurgeReport()
    for row in trash_store.due(now, limit, tenant):
        req = store.storage_request(row["tenant"], row["request_id"])
        targets = (
            [{"id": req["id"], "request_id": req["request_id"], "object_id": req["object_id"]}]
            if req and req["status"] == t.SUCCESS and req["object_id"] is not None
            else []
        )
        try:
            done = deletion.remove(
                setup.deletion,
                store,
                row["tenant"],
                targets,
                now,
                withdrawn={row["object_id"]: row["withdrawn"]} if row["withdrawn"] and row["object_id"] else None,
            )
        except deletion._Wait as exc:
            report.waiting.append(f"{row['request_id']}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - one file at a time: it waits for the next pass, the others go on
            report.waiting.append(f"{row['request_id']}: {faults.describe(exc)}")
            log.warning("trash purge of %s (%s) waits: %s", row["request_id"], row["tenant"], faults.describe(exc))
            if faults.classify(exc) == "configuration":
                break
            continue
        store.record_deletion(
            None,
            tenant=row["tenant"],
            deletion_request_id=f"trash:{row['id']}",
            targets=done.marked,
            removed=done.removed,
            trash_state=PURGED,
        )
        if not targets:  # deleted meanwhile by a deletion request: the row only closes
            trash_store.close_now([row["request_pk"]], PURGED, "nothing left to delete")
        report.purged.append(row["request_id"])
        report.objects_deleted += len(done.removed)
        report.bytes_deleted += sum(r["object"].size for r in done.removed)
        report.early_deletion_usd += done.charge
    return report
