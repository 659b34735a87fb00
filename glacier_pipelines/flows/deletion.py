"""Deletion requests: remove a stored file's bytes from S3 once nothing else refers to them.

- By ``requestId`` one reference (a storage request) goes; by ``checksum`` or ``url`` every
  reference of the tenant to that content goes.
- Bytes leave S3 only with their last reference: deduplicated content stays while another
  request still refers to it, and a package (tar) is deleted once none of its members is live
  (a mostly-deleted package is repacked by ``flows/compaction.py``).
- Deleting before the storage class's minimum duration is allowed; the answer carries the
  early-deletion charge (``core/pricing.py``).
- Deleting twice answers SUCCESS with "already deleted". Another tenant's file, an unknown
  one and a request that failed get the same ERROR words, so nothing says whether it exists.
- A file whose storage request is still in flight, or whose content a pending storage
  request may deduplicate onto, waits (the deletion stays PENDING for the next pass).
- ``remove`` is the one safe-deletion path: deletion requests and the trash's purge (after its
  grace period, ``flows/trash.py``) both go through it.
- Order of effects: the S3 deletes, then the ledger line (``status: DELETED``, so ``catalog
  rebuild`` never brings the request back), then one catalog transaction with the answer. A
  fault or crash in between leaves the deletion PENDING and doing it again is harmless (an
  object already gone counts as deleted); a delete S3 refuses for the object itself ends the
  deletion ERROR before anything was written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.compaction import CompactionStore
from glacier_pipelines.catalog.worker_requests import DELETED, WorkerRequestStore
from glacier_pipelines.core import faults, keys, ledger, packaging, pricing
from glacier_pipelines.core.objectstore import NotFound, ObjectStore, S3Store, put_document
from glacier_pipelines.core.tenants import TenantsConfig
from glacier_pipelines.core.worker_requests import DeletionRequest, not_found

log = logging.getLogger(__name__)
WAITING = (t.PENDING, t.CLAIMED, t.VERIFIED, t.STORED, t.DELAYED)


@dataclass
class DeletionSetup:
    catalog: Catalog
    s3: Any  # a boto3 S3 client: each bucket's S3Store is built on it (unless ``stores`` gives them)
    bucket: str  # where the request ledger lives (unless the tenants file gives the tenant its own bucket)
    key_prefix: str
    pricing: pricing.Pricing | None = None
    compact_share: Callable[[str], float] = lambda tenant: 0.5  # per tenant: a package this much deleted is due for repacking
    tenants: TenantsConfig | None = None  # GLACIER_TENANTS_CONFIG: the ledger goes next to each tenant's bytes
    stores: Callable[[str], ObjectStore] | None = None  # bucket -> its ObjectStore, in place of S3Store(s3, bucket)

    def store(self, bucket: str) -> ObjectStore:
        """The ObjectStore of a bucket the catalog recorded (objects of one tenant may live in several)."""
        return self.stores(bucket) if self.stores is not None else S3Store(self.s3, bucket)

    def ledger_place(self, tenant: str) -> tuple[str, str]:
        """(bucket, tenant prefix) of the tenant's request ledger: where its archive path writes it."""
        if self.tenants is None or self.tenants.source is None:
            return self.bucket, keys.tenant_prefix(self.key_prefix, tenant)
        s = self.tenants.for_tenant(tenant)
        return s.bucket, keys.tenant_prefix(s.key_prefix, tenant)


@dataclass
class DeletionReport:
    answered: dict[str, int] = field(default_factory=dict)
    waiting: list[str] = field(default_factory=list)  # request ids left PENDING, with why
    objects_deleted: int = 0
    bytes_deleted: int = 0
    early_deletion_usd: float = 0.0

    def count(self, status: str) -> None:
        self.answered[status] = self.answered.get(status, 0) + 1


class _Wait(Exception):
    """The deletion cannot be decided now: left PENDING for the next pass."""


def process(setup: DeletionSetup, *, limit: int = 200, now: datetime | None = None) -> DeletionReport:
    """Answer up to ``limit`` pending deletion requests; one that fails never stops the others."""
    store, report = WorkerRequestStore(setup.catalog), DeletionReport()
    for row in store.pending("DELETION", limit=limit):
        try:
            _delete_one(setup, store, row, report, now or datetime.now(timezone.utc))
        except _Wait as exc:
            report.waiting.append(f"{row['request_id']}: {exc}")
        except Exception as exc:  # noqa: BLE001 - decided by core/faults.py, one request at a time
            kind = faults.classify(exc)
            if kind != "request":
                report.waiting.append(f"{row['request_id']}: {faults.describe(exc)}")
                log.warning("deletion %s of %s waits (%s fault): %s", row["request_id"], row["tenant"], kind, faults.describe(exc))
                if kind == "configuration":
                    break
                continue
            message = f"the deletion failed: {faults.describe(exc)}"
            store.set_status(row["id"], t.ERROR, messages=[message], response=(t.ERROR, [message], None))
            report.count(t.ERROR)
    return report


def _targets(store: WorkerRequestStore, tenant: str, request: DeletionRequest) -> tuple[list[dict[str, Any]], bool]:
    """(live storage requests to delete, whether the file was already deleted); raises _Wait, or returns ([], False) when unknown."""
    selector = request.file
    if selector.requestId is not None:
        found = store.storage_request(tenant, selector.requestId)
        rows = [found] if found else []
    elif selector.checksum is not None:
        rows = store.requests_by_checksum(tenant, selector.checksum)
    else:
        try:
            bucket, key, member = packaging.parse_member_url(selector.url or "")
        except ValueError:
            return [], False
        rows = store.requests_at(tenant, bucket, key, member)
        moved_to = None if rows else CompactionStore(store.catalog).alias(tenant, selector.url or "")
        if moved_to:  # a member of a compacted package, named by its old storedFileUrl
            rows = store.requests_at(tenant, *packaging.parse_member_url(moved_to))
        if not rows and store.was_deleted(tenant, selector.url or ""):
            return [], True
    if any(r["status"] in WAITING for r in rows):
        raise _Wait("the file is not stored yet: its storage request is still in flight")
    live = [r for r in rows if r["status"] == t.SUCCESS]
    return live, not live and any(r["status"] == DELETED for r in rows)


def _delete_one(setup: DeletionSetup, store: WorkerRequestStore, row: dict[str, Any], report: DeletionReport, now: datetime) -> None:
    tenant, request = row["tenant"], DeletionRequest.model_validate(row["body"])
    targets, already = _targets(store, tenant, request)
    if not targets:
        if already:
            message = f"{request.file.describe()}: already deleted"
            store.set_status(
                row["id"],
                t.SUCCESS,
                messages=[message],
                response=(
                    t.SUCCESS,
                    [message],
                    {"alreadyDeleted": True, "deletedRequests": [], "files": [], "earlyDeletionChargeUsd": 0.0},
                ),
            )
            report.count(t.SUCCESS)
        else:
            message = not_found(tenant, request.file)
            store.set_status(row["id"], t.ERROR, messages=[message], response=(t.ERROR, [message], None))
            report.count(t.ERROR)
        return
    done = remove(setup, store, tenant, targets, now)
    content = {
        "alreadyDeleted": False,
        "deletedRequests": [m["request_id"] for m in done.marked],
        "files": done.files,
        "earlyDeletionChargeUsd": done.charge,
    }
    if store.record_deletion(
        row["id"],
        tenant=tenant,
        deletion_request_id=row["request_id"],
        targets=done.marked,
        removed=done.removed,
        response=(t.SUCCESS, done.messages, content),
    ):
        report.count(t.SUCCESS)
        report.objects_deleted += len(done.removed)
        report.bytes_deleted += sum(r["object"].size for r in done.removed)
        report.early_deletion_usd += done.charge
        log.info(
            "deletion %s of %s: %d request(s) deleted, %d object(s) removed", row["request_id"], tenant, len(done.marked), len(done.removed)
        )


@dataclass
class Removal:
    """What one deletion did: per object its answer entry, the storage requests marked, the objects whose bytes left S3."""

    files: list[dict[str, Any]] = field(default_factory=list)
    marked: list[dict[str, Any]] = field(default_factory=list)  # {pk, request_id, url}
    removed: list[dict[str, Any]] = field(default_factory=list)  # {object, checksums, stored_at, charge, urls}
    messages: list[str] = field(default_factory=list)

    @property
    def charge(self) -> float:
        return sum(f["earlyDeletionChargeUsd"] or 0.0 for f in self.files)


def remove(
    setup: DeletionSetup,
    store: WorkerRequestStore,
    tenant: str,
    targets: list[dict[str, Any]],
    now: datetime,
    withdrawn: dict[int, dict[str, str]] | None = None,
) -> Removal:
    """The safe deletion of some live storage requests (``{id, request_id, object_id}``): the bytes of each object go only
    with its last reference, a package member is only marked (its package goes with its last live member), the early-deletion
    charge is computed; then the S3 deletes and the ledger's DELETED lines. Recording it is the caller's (one transaction).

    Used by deletion requests and by the trash once its grace period is over; ``withdrawn``: object id -> digests the
    trash took out of the content index (recorded with the deletion). Raises _Wait when the content is still being stored.
    """
    by_object: dict[int, list[dict[str, Any]]] = {}
    for target in targets:
        by_object.setdefault(target["object_id"], []).append(target)
    done = Removal()
    deletes: list[tuple[str, str]] = []
    for object_id, group in by_object.items():
        obj = store.object(object_id)
        if obj is None:
            continue
        if store.content_in_flight(tenant, object_id):
            raise _Wait(f"a storage request in flight announces the content of {obj.url}")
        package = store.package_at(object_id)
        urls = []
        for target in group:
            member = store.member_of(target["id"]) if package else None
            urls.append(packaging.member_url(obj.bucket, obj.key, member["name"]) if member else obj.url)
            done.marked.append({"pk": target["id"], "request_id": target["request_id"], "url": urls[-1]})
        live = store.live_references(object_id, excluding=[g["id"] for g in group])
        entry: dict[str, Any] = {
            "storedFileUrl": urls[0] if len(set(urls)) == 1 else obj.url,
            "storageClass": obj.storage_class,
            "fileSizeInBytes": obj.size,
            "bytesDeleted": live == 0,
            "earlyDeletionChargeUsd": 0.0,
        }
        if package:
            entry["packageUrl"] = obj.url  # bytesDeleted, fileSizeInBytes and the charge are the package's
        if live:
            entry["stillReferencedBy"] = live
            what = "package" if package else "object"
            done.messages.append(f"{obj.url}: kept, the {what} is still referred to by {live} other request(s)")
            if package:
                pending_pks = {g["id"] for g in group}
                share = store.package_share_deleted(package["id"], also_deleted=pending_pks)
                entry["packageDeletedShare"] = round(share, 4)
                if share >= setup.compact_share(tenant):
                    done.messages.append(
                        f"{obj.url}: {share:.0%} of its member bytes are deleted (threshold {setup.compact_share(tenant):.0%}): "
                        "due for repacking; package_compaction repacks its live members into a new package"
                    )
        else:
            stored_at = store.stored_at(object_id)
            days = max(0.0, (now - stored_at).total_seconds() / 86400) if stored_at else None
            charge, minimum = _early_charge(setup, obj.storage_class, obj.size, days)
            entry.update(daysStored=round(days, 3) if days is not None else None, earlyDeletionChargeUsd=charge)
            if charge:
                done.messages.append(
                    f"{obj.url}: deleted after {days:.1f} days, before the {minimum}-day minimum of {obj.storage_class}: "
                    f"early-deletion charge about {charge:.3g} USD"
                )
            object_keys = [obj.key] + ([package["manifest_key"]] if package and package.get("manifest_key") else [])
            deletes.extend((obj.bucket, k) for k in object_keys)
            digests = {**(withdrawn or {}).get(object_id, {}), **store.object_checksums(object_id)}
            done.removed.append({"object": obj, "checksums": digests, "stored_at": stored_at, "charge": charge, "urls": [obj.url]})
        done.files.append(entry)
    for bucket, key in deletes:
        delete_object(setup.store(bucket), key)
    _write_ledger(setup, tenant, done.marked, now)  # after the bytes went: the ledger never claims a deletion that did not happen
    return done


def delete_object(store: ObjectStore, key: str) -> None:
    """Delete in the bucket the catalog recorded; an object already gone is what was wanted."""
    try:
        store.delete(key)
    except NotFound:
        pass


def _early_charge(setup: DeletionSetup, storage_class: str, size: int, days: float | None) -> tuple[float | None, int | None]:
    if setup.pricing is None or days is None:
        return None, None
    try:
        cls = setup.pricing.storage_class(storage_class)
        return pricing.early_deletion_charge(
            setup.pricing, storage_class=storage_class, size_bytes=size, days_stored=days
        ), cls.min_storage_days
    except pricing.PricingError:
        return None, None


def _write_ledger(setup: DeletionSetup, tenant: str, marked: list[dict[str, Any]], now: datetime) -> None:
    """One ledger object with a ``DELETED`` line per deleted storage request, so a catalog rebuild does not bring them back."""
    if not marked:
        return
    body = ledger.encode(
        {"tenant": tenant, "requestId": m["request_id"], "status": DELETED, "storedFileUrl": m["url"], "answeredAt": now.isoformat()}
        for m in marked
    )
    bucket, prefix = setup.ledger_place(tenant)
    put_document(setup.store(bucket), ledger.key_for(prefix, now), body)
