"""Archive steps for one batch: claim, verify (fetch once, hash, measure, stage), store, check.

Each step reads its work from the catalog and writes its outcome back, so a step can be
re-executed after a crash and picks up exactly what is left. One bad request never stops
the others: it ends ``ERROR`` with a message, and its response is queued.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.catalog import tables as t
from glacier_pipelines.core import checksums, keys, staging, transfer
from glacier_pipelines.core.objectstore import StoreError
from glacier_pipelines.flows.archive_setup import (  # the setup and report: callers find them here too
    ArchiveSetup,
    StepReport,
    answer_content,
    fail,
    hold,
    is_held,
    link,
)
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
from glacier_pipelines.flows.store_faults import said
from glacier_pipelines.flows.verifier import BatchVerifier

log = logging.getLogger(__name__)


def claim_batch(catalog: Catalog, tenant: str, run_id: str, limit: int, run_finished: Callable[[str], bool]) -> tuple[str, int]:
    """Start a batch of the tenant's pending requests, adopting the unfinished ones of dead runs."""
    keys.validate_tenant(tenant)
    in_flight = catalog.batch_runs_in_flight(tenant)
    # A batch is adopted when its run is over (or is this run, re-executed): its requests are not lost.
    adopt = [batch for batch, owner in in_flight.items() if owner == run_id or run_finished(owner)]
    return catalog.claim_batch(tenant, run_id, limit, adopt)


def verify_batch(setup: ArchiveSetup, batch_id: str, tenant: str, run_id: str) -> StepReport:
    """Fetch each claimed request once, verify its checksum, measure it and stage the bytes (flows/verifier.py)."""
    return BatchVerifier(setup.for_tenant(tenant), batch_id, tenant, run_id).run()


def store_batch(setup: ArchiveSetup, batch_id: str, tenant: str, run_id: str, tidy: bool = True) -> StepReport:
    """Complete each verified upload (or put each staged file) and record the object, in the tenant's bucket and class."""
    setup = setup.for_tenant(tenant)
    report = StepReport(batch_id=batch_id, tenant=tenant)
    rows = setup.catalog.batch_requests(batch_id, [t.VERIFIED], not_stage_kind="member")
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
                link(setup, row, found, run_id)
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
            content = answer_content(setup, row, stage["bucket"], stage["key"], row.size or 0)
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
            if is_held(exc):  # the staged bytes or the open upload wait, VERIFIED, for the next pass
                raise hold(report, row, exc, setup) from exc
            fail(setup, report, row, f"storing in S3 failed: {said(exc)}")
        except Exception as exc:
            log.exception("request %s failed unexpectedly while storing", row.request_id)
            fail(setup, report, row, f"internal error: {type(exc).__name__}: {exc}")
    for row in duplicates:
        report.considered += 1
        req = row.request
        found = locate(setup, tenant, algorithm=req.algorithm, checksum=req.checksum)
        if found is None:
            fail(setup, report, row, "identical content earlier in this batch could not be stored; resubmit")
            continue
        link(setup, row, found, run_id)
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
