"""Archive steps for one batch: claim, verify (fetch once, hash, measure, stage), store, check.

Each step reads its work from the catalog and writes its outcome back, so a step can be
re-executed after a crash and picks up exactly what is left. One bad request never stops
the others: it ends ``ERROR`` with a message, and its response is queued.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from glacier_pipelines.catalog import Catalog, RequestRow, StoredObject
from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.packages import PackageStore
from glacier_pipelines.core import checksums, faults, keys, packaging, responses, staging, transfer
from glacier_pipelines.core.objectstore import ObjectStore, S3Store, StoreError
from glacier_pipelines.core.sources import SourcePolicy
from glacier_pipelines.core.tenants import TenantsConfig
from glacier_pipelines.flows import locations
from glacier_pipelines.flows.checks import (  # noqa: F401  (the check steps and the ledger, here for their callers)
    CheckReport,
    check_batch,
    check_objects,
    check_waiting,
    ledger_entry,
    raise_if_unreachable,
    write_ledger,
)
from glacier_pipelines.flows.placement import check_tenant_bucket, locate
from glacier_pipelines.flows.store_faults import cause, said

log = logging.getLogger(__name__)


@dataclass
class ArchiveSetup:
    """Everything the steps need; built by the Dagster resources or by tests."""

    catalog: Catalog
    s3: Any  # a boto3 S3 client: each bucket's ObjectStore is built on it (``objects``)
    upload: transfer.UploadSettings
    sources: SourcePolicy
    key_prefix: str
    staging_dir: Path
    stale_upload_age: timedelta = timedelta(hours=24)
    packaging: Any = None  # a PackagingPolicy; None packages nothing
    staging_url: str | None = None  # GLACIER_STAGING_URL: s3://bucket/prefix, so that any worker reads what another staged
    # GLACIER_TENANTS_CONFIG: each tenant's bucket, prefix, class, SSE and small-file threshold (None: the fields above for all)
    tenants: TenantsConfig | None = None
    scoped_to: str | None = None  # the tenant whose settings upload, key_prefix and packaging hold (for_tenant)

    def objects(self, bucket: str) -> ObjectStore:
        """The ObjectStore of a bucket: the tenant's, one the catalog recorded, or the staging bucket (a bucket -> store function)."""
        return S3Store(self.s3, bucket)

    @property
    def staging_area(self) -> staging.StagingArea:
        """Where verified small files wait: the local staging_dir (embedded default) or GLACIER_STAGING_URL."""
        return staging.StagingArea.from_setting(self.staging_url, self.staging_dir)

    def for_tenant(self, tenant: str) -> "ArchiveSetup":
        """This setup with the tenant's own bucket, key prefix, storage class, SSE and small-file threshold.

        Every step that writes a tenant's bytes (objects, packages, manifests, ledger lines) or looks
        for content to deduplicate onto works on the scoped setup; readers of stored bytes use the
        bucket the catalog recorded for each object instead.
        """
        if self.tenants is None or self.tenants.source is None or self.scoped_to == tenant:
            return self  # no tenants file: this setup's own fields are every tenant's settings
        s = self.tenants.for_tenant(tenant)
        upload = dataclasses.replace(
            self.upload,
            bucket=s.bucket,
            storage_class=s.storage_class,
            sse=s.sse,
            kms_key_id=s.sse_kms_key_id if s.sse == "aws:kms" else None,
        )
        policy = self.packaging
        if policy is not None:
            policy = dataclasses.replace(policy, tenant_thresholds=((tenant, s.small_file_threshold_bytes),))
        return dataclasses.replace(self, upload=upload, key_prefix=s.key_prefix, packaging=policy, scoped_to=tenant)

    def placement(self, tenant: str) -> tuple[str, str, str]:
        """(bucket, tenant prefix, storage class) where the tenant stores now: the only place deduplication may point at."""
        scoped = self.for_tenant(tenant)
        return scoped.upload.bucket, keys.tenant_prefix(scoped.key_prefix, tenant), scoped.upload.storage_class

    def setting(self, tenant: str, name: str) -> str:
        """The setting an operator fixes for this tenant's ``name`` (bucket, storage_class...): the tenants file's field or the variable."""
        if self.tenants is None:
            return {"bucket": "GLACIER_BUCKET", "storage_class": "GLACIER_STORAGE_CLASS"}.get(name, name)
        return self.tenants.origin(tenant, name)


@dataclass
class StepReport:
    batch_id: str
    tenant: str
    considered: int = 0
    verified: int = 0
    stored: int = 0
    deduplicated: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (request id, reason)
    bytes: int = 0
    objects: list[dict[str, Any]] = field(default_factory=list)
    aborted_uploads: int = 0
    swept_staged_files: int = 0
    batches: list[str] = field(default_factory=list)
    handled: list[tuple[str, str]] = field(default_factory=list)  # (request id, outcome) for the lineage table
    held: list[tuple[str, str]] = field(default_factory=list)  # (request id, fault): kept in place for a later pass

    def merge(self, other: "StepReport") -> None:
        for name in ("considered", "verified", "stored", "deduplicated", "bytes", "aborted_uploads", "swept_staged_files"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("failed", "objects", "batches", "handled", "held"):
            getattr(self, name).extend(getattr(other, name))


def hold(report: StepReport, row: RequestRow, exc: BaseException, setup: ArchiveSetup | None = None) -> faults.ArchiveFault:
    """A transient or configuration fault: the request keeps its place, the step stops and fails loudly."""
    kind = faults.classify(exc)
    reason = faults.describe(cause(exc))  # in S3's words: the boto3 error a StoreError wraps
    if setup is not None and faults.error_code(cause(exc)) == "NoSuchBucket":
        bucket = setup.for_tenant(row.tenant).upload.bucket
        reason = f"tenant {row.tenant}: bucket {bucket!r} does not exist (set by {setup.setting(row.tenant, 'bucket')}): create it or fix the setting"
    log.warning("request %s (%s) kept for a later pass: S3 %s fault: %s", row.request_id, row.tenant, kind, reason)
    report.held.append((row.request_id, reason))
    fault = faults.ArchiveFault(f"S3 {kind} fault, the batch stopped and its requests keep their place: {reason}", kind)
    fault.report = report  # type: ignore[attr-defined]
    return fault


def _is_held(exc: BaseException) -> bool:
    return isinstance(exc, (StoreError, ClientError, BotoCoreError)) and faults.classify(exc) != "request"


def claim_batch(catalog: Catalog, tenant: str, run_id: str, limit: int, run_finished: Callable[[str], bool]) -> tuple[str, int]:
    """Start a batch of the tenant's pending requests, adopting the unfinished ones of dead runs."""
    keys.validate_tenant(tenant)
    in_flight = catalog.batch_runs_in_flight(tenant)
    # A batch is adopted when its run is over (or is this run, re-executed): its requests are not lost.
    adopt = [batch for batch, owner in in_flight.items() if owner == run_id or run_finished(owner)]
    return catalog.claim_batch(tenant, run_id, limit, adopt)


def _content(setup: ArchiveSetup, row: RequestRow, bucket: str, key: str, size: int) -> dict[str, Any]:
    req = row.request
    return responses.success_content(
        bucket=bucket,
        key=key,
        checksum=req.checksum,
        algorithm=req.algorithm,
        size=size,
        width=row.width,
        height=row.height,
        source_url=req.url,
    )


def _link_existing(setup: ArchiveSetup, row: RequestRow, obj: StoredObject, run_id: str) -> None:
    """Answer a request with an object already stored for its tenant (same content)."""
    req = row.request
    row.width, row.height = (obj.width, obj.height) if req.computeImageSize else (None, None)
    if req.computeImageSize and obj.width is None:
        row.messages = row.messages + ["image size unknown: identical content was archived earlier without measuring it"]
    row.messages = row.messages + [f"deduplicated: identical content already stored at {obj.url}"]
    record = {
        f: getattr(obj, f) for f in ("tenant", "bucket", "key", "storage_class", "size", "sha256", "s3_checksum", "etag", "width", "height")
    }
    setup.catalog.store(record, {req.algorithm: req.checksum}, [(row, True, _content(setup, row, obj.bucket, obj.key, obj.size))], run_id)


def _link_member(setup: ArchiveSetup, row: RequestRow, member: dict[str, Any], run_id: str) -> None:
    """Answer a request with content already stored as a package member."""
    req, obj = row.request, member["object"]
    row.messages = row.messages + [f"deduplicated: identical content already stored as member {member['name']} of {obj.url}"]
    content = responses.success_content(
        bucket=obj.bucket,
        key=obj.key,
        checksum=req.checksum,
        algorithm=req.algorithm,
        size=member["size"],
        width=None,
        height=None,
        source_url=req.url,
        small_file_managed=True,
    )
    content["storeFileMetadata"]["storedFileUrl"] = packaging.member_url(obj.bucket, obj.key, member["name"])
    PackageStore(setup.catalog).link_member(row, member, content, run_id)


def _link(setup: ArchiveSetup, row: RequestRow, found: locations.Location, run_id: str) -> None:
    """Answer a request from the content index: no new bytes."""
    if found.member is not None:
        _link_member(setup, row, found.member, run_id)
    else:
        _link_existing(setup, row, found.object, run_id)


def verify_batch(setup: ArchiveSetup, batch_id: str, tenant: str, run_id: str) -> StepReport:
    """Fetch each claimed request once, verify its checksum, measure it and stage the bytes (flows/verifier.py)."""
    from glacier_pipelines.flows.verifier import BatchVerifier  # imported here: the verifier builds on this module's steps

    return BatchVerifier(setup.for_tenant(tenant), batch_id, tenant, run_id).run()


def _fail(setup: ArchiveSetup, report: StepReport, row: RequestRow, reason: str) -> None:
    log.warning("request %s (%s): %s", row.request_id, row.tenant, reason)
    try:
        transfer.discard_stage(setup.objects, row.stage)
    except (StoreError, OSError) as exc:
        log.warning("could not discard stage of %s: %s", row.request_id, exc)
    setup.catalog.fail(row.pk, t.ERROR, row.messages + [reason])
    report.failed.append((row.request_id, reason))


def store_batch(setup: ArchiveSetup, batch_id: str, tenant: str, run_id: str, tidy: bool = True) -> StepReport:
    """Complete each verified upload (or put each staged file) and record the object, in the tenant's bucket and class."""
    setup = setup.for_tenant(tenant)
    report = StepReport(batch_id=batch_id, tenant=tenant)
    rows = setup.catalog.batch_requests(batch_id, [t.VERIFIED])
    originals = [r for r in rows if r.stage and r.stage["kind"] in ("file", "multipart")]
    duplicates = [r for r in rows if not r.stage or r.stage["kind"] == "duplicate"]  # package members wait in glacier_packages
    for row in originals:
        report.considered += 1
        req, stage = row.request, row.stage
        assert stage is not None
        if stage["kind"] == "file":  # a staged file goes to the bucket configured now (a wrong one may have been fixed since)
            stage = dict(stage, bucket=setup.upload.bucket)
        try:
            found = locate(setup, tenant, sha256=stage["sha256"])
            if found is not None:
                # Announced in another algorithm than the stored copy, but the same bytes: keep one copy.
                transfer.discard_stage(setup.objects, stage)
                _link(setup, row, found, run_id)
                report.deduplicated += 1
                continue
            metadata = {"source-algorithm": req.algorithm, "source-checksum": req.checksum, "sha256": stage["sha256"]}
            done = transfer.commit_stage(setup.objects, setup.upload, stage, metadata)
            if stage["kind"] == "file":  # S3 holds it now; a crash before the catalog records it is healed by commit_stage
                staging.delete(setup.objects, stage["path"])
            record = {
                "tenant": tenant,
                "bucket": stage["bucket"],
                "key": stage["key"],
                "storage_class": setup.upload.storage_class,
                "size": row.size,
                "sha256": stage["sha256"],
                "s3_checksum": done["s3_checksum"],
                "etag": done["etag"],
                "width": row.width,
                "height": row.height,
                "run_id": run_id,
                "batch_id": batch_id,
            }
            content = _content(setup, row, stage["bucket"], stage["key"], row.size or 0)
            setup.catalog.store(
                record,
                {req.algorithm: req.checksum, checksums.S3_ALGORITHM: stage["sha256"]},
                [(row, False, content)],
                run_id,
                rewritten=True,
            )
            report.stored += 1
            report.bytes += row.size or 0
            report.objects.append({"request": row.request_id, "url": f"s3://{stage['bucket']}/{stage['key']}", "size": row.size})
        except (StoreError, OSError) as exc:
            if _is_held(exc):  # the staged bytes or the open upload wait, VERIFIED, for the next pass
                raise hold(report, row, exc, setup) from exc
            _fail(setup, report, row, f"storing in S3 failed: {said(exc)}")
        except Exception as exc:
            log.exception("request %s failed unexpectedly while storing", row.request_id)
            _fail(setup, report, row, f"internal error: {type(exc).__name__}: {exc}")
    for row in duplicates:
        report.considered += 1
        req = row.request
        found = locate(setup, tenant, algorithm=req.algorithm, checksum=req.checksum)
        if found is None:
            _fail(setup, report, row, "identical content earlier in this batch could not be stored; resubmit")
            continue
        _link(setup, row, found, run_id)
        report.deduplicated += 1
    if tidy:  # store_waiting tidies once for all its batches
        tidied = clean_up(setup, tenant)
        report.aborted_uploads, report.swept_staged_files = tidied.aborted_uploads, tidied.swept_staged_files
    return report


def sweep_staging(setup: ArchiveSetup, tenant: str, now: datetime | None = None) -> list[str]:
    """Remove the tenant's staged files that nothing waits on any more, once older than ``stale_upload_age``.

    A process killed between the catalog recording stored bytes and the removal of their
    staged copy (a package's members, its tar, or a half-written ``.part``) leaves such files;
    they are never needed again. The age guard keeps what a run is writing right now. Works the
    same on the local folder and on a GLACIER_STAGING_URL prefix.
    """
    live_paths, open_packages = setup.catalog.live_staged_paths(tenant)
    live_paths |= {staging.holder(p) for p in live_paths}  # a segment lives while one of its members does
    cutoff = ((now or datetime.now(timezone.utc)) - setup.stale_upload_age).timestamp()
    removed = []
    for locator, modified in staging.listing(setup.objects, setup.staging_area, tenant):
        if locator in live_paths or modified >= cutoff:
            continue
        parent, _, name = locator.replace("\\", "/").rpartition("/")
        if parent.endswith("/packages") and name.split(".", 1)[0] in open_packages:
            continue
        try:
            staging.delete(setup.objects, locator)
        except (StoreError, OSError) as exc:
            log.warning("could not remove staged %s: %s", locator, said(exc))
            continue
        removed.append(locator)
    if removed:
        log.info("tenant %s: removed %d staged files that nothing waits on", tenant, len(removed))
    return removed


def verify_waiting(setup: ArchiveSetup, tenant: str, run_id: str, run_finished: Callable[[str], bool]) -> StepReport:
    """verified_files' work: every CLAIMED request of the tenant's batches that this run may take (its own, or a finished run's)."""
    setup = setup.for_tenant(tenant)
    check_tenant_bucket(setup, tenant)  # before any batch is taken: a missing bucket moves no request
    report = StepReport(batch_id="", tenant=tenant)
    for batch_id in setup.catalog.take_batches(tenant, run_id, [t.CLAIMED], run_finished):
        report.batches.append(batch_id)
        try:
            report.merge(verify_batch(setup, batch_id, tenant, run_id))
        finally:
            report.handled += [(r.request_id, r.status) for r in setup.catalog.batch_requests(batch_id)]
    return report


def store_waiting(setup: ArchiveSetup, tenant: str, run_id: str, run_finished: Callable[[str], bool]) -> StepReport:
    """glacier_objects' work: every VERIFIED standalone file of the batches this run may take; cleans up after them."""
    setup = setup.for_tenant(tenant)
    check_tenant_bucket(setup, tenant)
    report = StepReport(batch_id="", tenant=tenant)
    batches = setup.catalog.take_batches(tenant, run_id, [t.VERIFIED], run_finished)
    for batch_id in batches:
        report.batches.append(batch_id)
        part = store_batch(setup, batch_id, tenant, run_id, tidy=False)
        report.merge(part)
        report.handled += [(o["request"], o["url"]) for o in part.objects]
    report.merge(clean_up(setup, tenant))
    return report


def clean_up(setup: ArchiveSetup, tenant: str) -> StepReport:
    """Abort the tenant's multipart uploads that nothing waits on, and sweep its stale staged files."""
    setup = setup.for_tenant(tenant)
    report = StepReport(batch_id="", tenant=tenant)
    try:
        aborted = transfer.abort_stale_uploads(
            setup.objects(setup.upload.bucket),
            keys.tenant_prefix(setup.key_prefix, tenant),
            setup.catalog.open_upload_ids(),
            setup.stale_upload_age,
        )
        report.aborted_uploads = len(aborted)
    except StoreError as exc:
        log.warning("could not list multipart uploads to clean up: %s", said(exc))
    report.swept_staged_files = len(sweep_staging(setup, tenant))
    return report
