"""Package compaction: a package whose deleted members reach the tenant's share of its bytes is repacked.

For each stored package of the tenant at or over ``compact_deleted_share`` (GLACIER_TENANTS_CONFIG,
default GLACIER_COMPACT_DELETED_SHARE = 0.5) that still has live members:

1. **Readable first.** A GLACIER or DEEP_ARCHIVE package is restored (RestoreObject at the
   tenant's restore tier, recorded in ``object_restores`` so the restore path joins it rather than
   asking twice); every pass HEADs it, and its bytes are read only once ``x-amz-restore`` says
   ``ongoing-request="false"``. STANDARD and GLACIER_IR packages are read at once.
2. **Read and check.** The whole tar is read once into the staging folder and must hash to the
   catalog's SHA-256 (else the package is flagged, the compaction FAILED, nothing changed).
3. **Repack.** The live members (each re-hashed from its recorded offset) go into a new
   deterministic tar under the tenant's current bucket, prefix and class, with its manifest;
   S3's checksum, size and class of the new package are read back before anything switches.
4. **Switch, in one transaction.** Members, their objects, restores in flight and trash rows point
   at the new package; each old member URL gets an alias to the new one, so restoration,
   availability and deletion requests naming the old storedFileUrl still work. Ledger lines with
   the new URLs are written first, so a catalog rebuild finds the members where they are.
5. **Old package out.** Its tar and manifest are deleted; ``deletions`` records it with the
   early-deletion charge (the cost report shows it), and ``compactions`` keeps the story.

A crash after the switch leaves the compaction SWITCHED: the next pass deletes the old package.
The new package's id derives from the old one, so a repeated repack rewrites the same key.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from glacier_pipelines.catalog.compaction import FAILED, RESTORING, CompactionStore
from glacier_pipelines.catalog.restores import RestoreStore
from glacier_pipelines.core import faults, keys, packaging, responses, transfer
from glacier_pipelines.core.constants import UNREADABLE_CLASSES
from glacier_pipelines.core.objectstore import ObjectStore, StoreError, put_document
from glacier_pipelines.core.restores import next_poll_delay
from glacier_pipelines.flows.store_faults import described
from glacier_pipelines.flows import deletion, locations
from glacier_pipelines.flows.archive import ArchiveSetup, ledger_entry, write_ledger
from glacier_pipelines.flows.packaging import upload_package_file

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024


@dataclass
class CompactionSetup:
    archive: ArchiveSetup  # the tenant's placement, uploads, staging folder
    deletion: deletion.DeletionSetup  # each tenant's share threshold, the early-deletion price, S3 deletes
    restore_days: int = 1  # how long the restored copy of an archive-class package is kept (it is read once)


@dataclass
class CompactionReport:
    tenant: str
    due: int = 0
    restores_requested: list[str] = field(default_factory=list)  # package URLs
    waiting: list[str] = field(default_factory=list)  # "URL: why"
    compacted: list[dict[str, Any]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def early_deletion_usd(self) -> float:
        return sum(c["earlyDeletionChargeUsd"] or 0.0 for c in self.compacted)


def compact(setup: CompactionSetup, tenant: str, *, run_id: str | None = None, now: datetime | None = None) -> CompactionReport:
    """One pass over the tenant's packages: restore what must be, repack what is readable, finish what a crash left."""
    keys.validate_tenant(tenant)
    now = now or datetime.now(timezone.utc)
    store, report = CompactionStore(setup.archive.catalog), CompactionReport(tenant)
    threshold = setup.deletion.compact_share(tenant)
    for row in store.switched(tenant):
        _finish(setup, store, row, report, now)
    for package in store.candidates(tenant):
        if package["share"] < threshold:
            continue
        obj = package["object"]
        report.due += 1
        row = store.start(
            tenant=tenant,
            package_id=package["id"],
            old_url=obj.url,
            share=package["share"],
            messages=[f"{package['share']:.0%} of the member bytes deleted (threshold {threshold:.0%})"],
        )
        if row["state"] not in (RESTORING,):
            continue
        try:
            if not _readable(setup, store, row, obj, tenant, report, now):
                continue
            _repack(setup, store, row, package, tenant, report, run_id, now)
        except (ClientError, BotoCoreError, StoreError) as exc:  # StoreError from the port (uploads and checks too), boto3's raw
            if faults.classify(exc) != "request":
                raise faults.ArchiveFault(
                    f"compaction of {obj.url} stopped, it resumes on the next pass: {described(exc)}", faults.classify(exc)
                ) from exc
            report.waiting.append(f"{obj.url}: {described(exc)}")  # e.g. the restored copy expired: restored again next pass
        except (packaging.PackagingError, _Corrupt) as exc:
            store.update(row["id"], state=FAILED, finished_at=now, add_message=str(exc))
            report.failed.append((obj.url, str(exc)))
    return report


class _Corrupt(Exception):
    """The package's bytes are not the ones the catalog recorded."""


def _store(archive: ArchiveSetup, bucket: str) -> ObjectStore:
    """The port over a bucket of the archive's boto3 client (ArchiveSetup carries the client)."""
    return archive.objects(bucket)


def _restore_status(setup: CompactionSetup, obj: Any) -> Any:
    return _store(setup.archive, obj.bucket).head(obj.key).restore


def _readable(
    setup: CompactionSetup, store: CompactionStore, row: dict[str, Any], obj: Any, tenant: str, report: CompactionReport, now: datetime
) -> bool:
    """Whether S3 serves the package's bytes now; requests its restore (once) when it does not."""
    if obj.storage_class not in UNREADABLE_CLASSES:
        return True
    restores = RestoreStore(setup.archive.catalog)
    status = _restore_status(setup, obj)
    if status is None:  # no restore asked for, or the last one's copy expired
        tier = setup.archive.tenants.for_tenant(tenant).restore_tier if setup.archive.tenants else "Bulk"
        if obj.storage_class == "DEEP_ARCHIVE" and tier == "Expedited":
            tier = "Standard"
        _store(setup.archive, obj.bucket).restore(obj.key, days=setup.restore_days, tier=tier)  # one in progress is not an error
        restores.set_object_state(
            obj.id,
            state="REQUESTED",
            tier=tier,
            days=setup.restore_days,
            requested_at=now,
            restored_at=None,
            expires_at=None,
            next_poll_at=now + next_poll_delay(0),
            poll_attempts=0,
            verified=None,
            verify_message=None,
        )
        store.update(row["id"], restore_requested_at=now, add_message=f"restore requested ({tier}, {setup.restore_days} day(s))")
        report.restores_requested.append(obj.url)
        status = _restore_status(setup, obj)  # an instant restore is read in this pass
    if status is not None and not status.ongoing:
        restores.set_object_state(obj.id, state="RESTORED", restored_at=now, expires_at=status.expiry)
        return True
    report.waiting.append(f'{obj.url}: restore under way (x-amz-restore ongoing-request="true")')
    return False


def _download(setup: CompactionSetup, obj: Any, path: Path) -> None:
    """The whole package into ``path``, hashed on the way: it must be the SHA-256 the catalog recorded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with _store(setup.archive, obj.bucket).get(obj.key) as body, open(path, "wb") as f:
        for chunk in body.iter_chunks(CHUNK):
            digest.update(chunk)
            f.write(chunk)
    if digest.hexdigest() != obj.sha256:
        reason = f"read back for compaction, its bytes hash to {digest.hexdigest()}, the catalog recorded {obj.sha256}"
        locations.flag(setup.archive.catalog, obj, reason)
        raise _Corrupt(f"{obj.url}: {reason}; the package is flagged and left as it is")


def _repack(
    setup: CompactionSetup,
    store: CompactionStore,
    row: dict[str, Any],
    package: dict[str, Any],
    tenant: str,
    report: CompactionReport,
    run_id: str | None,
    now: datetime,
) -> None:
    old = package["object"]
    scoped = setup.archive.for_tenant(tenant)
    work = scoped.staging_dir / tenant / "compaction"
    old_path = work / f"{package['id']}.old.tar"
    new_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"glacier-pipelines:compaction:{package['id']}"))
    new_path = work / f"{new_id}.tar"
    try:
        _download(setup, old, old_path)
        ranges = {m["sha256"]: (m["offset"], m["length"]) for m in package["live"]}
        unique: dict[str, packaging.Member] = {}
        for m in package["live"]:
            unique.setdefault(
                m["sha256"], packaging.Member(m["name"], str(old_path), m["sha256"], m["request_id"], m["algorithm"], m["checksum"])
            )
        read_old = packaging.file_range_reader(old_path)
        packed, sha, size = packaging.build_tar(unique.values(), new_path, lambda m: read_old(*ranges[m.sha256]))
        problems = packaging.verify_members(packaging.file_range_reader(new_path), packed)
        if problems:
            raise packaging.PackagingError("; ".join(problems))
        key = f"{keys.tenant_prefix(scoped.key_prefix, tenant)}packages/{new_id}.tar"
        bucket, storage_class = scoped.upload.bucket, scoped.upload.storage_class
        s3_checksum = upload_package_file(scoped, new_path, key, sha, size)
        manifest_key = key + packaging.MANIFEST_SUFFIX
        body = packaging.manifest(new_id, tenant, key, sha, packed)
        put_document(_store(scoped, bucket), manifest_key, body)
        problems = transfer.verify_stored(_store(scoped, bucket), key=key, s3_checksum=s3_checksum, size=size, storage_class=storage_class)
        if problems:  # nothing switches to a package S3 does not hold as built
            raise packaging.PackagingError(f"s3://{bucket}/{key} read back wrong: " + "; ".join(problems))
    finally:
        old_path.unlink(missing_ok=True)
        new_path.unlink(missing_ok=True)
    by_sha = {p.sha256: p for p in packed}
    placed, aliases, entries = {}, [], []
    for m in package["live"]:
        p = by_sha[m["sha256"]]
        placed[m["request_pk"]] = (p.name, p.offset, p.length)
        new_url = packaging.member_url(bucket, key, p.name)
        aliases.append((m["request_pk"], packaging.member_url(old.bucket, old.key, m["name"]), new_url))
        content = responses.success_content(
            bucket=bucket,
            key=key,
            checksum=m["checksum"],
            algorithm=m["algorithm"],
            size=m["size"],
            width=None,
            height=None,
            source_url=(m["body"] or {}).get("url", ""),
            small_file_managed=True,
        )
        content["storeFileMetadata"]["storedFileUrl"] = new_url
        entries.append(ledger_entry(tenant, m["request_id"], content, m["deduplicated"], storage_class))
    write_ledger(scoped, entries)  # before the switch: the bucket records where the members are
    obj = {
        "tenant": tenant,
        "bucket": bucket,
        "key": key,
        "storage_class": storage_class,
        "size": size,
        "sha256": sha,
        "s3_checksum": s3_checksum,
        "etag": None,
        "width": None,
        "height": None,
        "run_id": run_id,
        "batch_id": None,
    }
    store.switch(
        compaction_id=row["id"],
        tenant=tenant,
        old=package,
        new_package_id=new_id,
        obj=obj,
        manifest_key=manifest_key,
        placed=placed,
        aliases=aliases,
        run_id=run_id,
    )
    log.info("package %s of %s: %d live member(s) repacked into s3://%s/%s", package["id"], tenant, len(placed), bucket, key)
    _finish(setup, store, {**row, "new_url": f"s3://{bucket}/{key}", "live_members": len(placed), "bytes_after": size}, report, now)


def _finish(setup: CompactionSetup, store: CompactionStore, row: dict[str, Any], report: CompactionReport, now: datetime) -> None:
    """Delete the old package (tar and manifest) and record it, with its early-deletion charge."""
    old, manifest_key = store.old_package(row["old_package_id"])
    charge = None
    if old is not None:
        old_store = _store(setup.archive, old.bucket)
        for key in [old.key] + ([manifest_key] if manifest_key else []):
            deletion.delete_object(old_store, key)
        wstore = deletion.WorkerRequestStore(setup.archive.catalog)
        stored_at = wstore.stored_at(old.id)
        days = max(0.0, (now - stored_at).total_seconds() / 86400) if stored_at else None
        charge, minimum = deletion._early_charge(setup.deletion, old.storage_class, old.size, days)
        message = f"old package {old.url} deleted after {days:.1f} days" if days is not None else f"old package {old.url} deleted"
        if charge:
            message += f", before the {minimum}-day minimum of {old.storage_class}: early-deletion charge about {charge:.3g} USD"
        store.finish(
            row["id"],
            tenant=row["tenant"],
            old_object=old,
            checksums=wstore.object_checksums(old.id),
            stored_at=stored_at,
            charge=charge,
            message=message,
        )
    else:
        store.finish(
            row["id"], tenant=row["tenant"], old_object=None, checksums={}, stored_at=None, charge=None, message="old package already gone"
        )
    report.compacted.append(
        {
            "package": row["old_package_id"],
            "oldUrl": row["old_url"],
            "newUrl": row.get("new_url"),
            "liveMembers": row.get("live_members"),
            "bytesBefore": old.size if old else None,
            "bytesAfter": row.get("bytes_after"),
            "earlyDeletionChargeUsd": charge,
        }
    )
