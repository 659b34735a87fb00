"""Archive steps for one batch: claim, verify (fetch once, hash, measure, stage), store, check.

Each step reads its work from the catalog and writes its outcome back, so a step can be
re-executed after a crash and picks up exactly what is left. One bad request never stops
the others: it ends ``ERROR`` with a message, and its response is queued.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from glacier_pipelines.catalog import Catalog, RequestRow, StoredObject
from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.packages import PackageStore
from glacier_pipelines.core import checksums, images, keys, packaging, responses, transfer
from glacier_pipelines.core.sources import SourceError, SourcePolicy, open_source

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024
SOURCE_ATTEMPTS = 3


@dataclass
class ArchiveSetup:
    """Everything the steps need; built by the Dagster resources or by tests."""

    catalog: Catalog
    s3: Any  # a boto3 S3 client
    upload: transfer.UploadSettings
    sources: SourcePolicy
    key_prefix: str
    staging_dir: Path
    stale_upload_age: timedelta = timedelta(hours=24)
    packaging: Any = None  # a PackagingPolicy; None packages nothing


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
        bucket=bucket, key=key, checksum=req.checksum, algorithm=req.algorithm, size=size,
        width=row.width, height=row.height, source_url=req.url,
    )


def _link_existing(setup: ArchiveSetup, row: RequestRow, obj: StoredObject, run_id: str) -> None:
    """Answer a request with an object already stored for its tenant (same content)."""
    req = row.request
    row.width, row.height = (obj.width, obj.height) if req.computeImageSize else (None, None)
    if req.computeImageSize and obj.width is None:
        row.messages = row.messages + ["image size unknown: identical content was archived earlier without measuring it"]
    row.messages = row.messages + [f"deduplicated: identical content already stored at {obj.url}"]
    record = {f: getattr(obj, f) for f in ("tenant", "bucket", "key", "storage_class", "size", "sha256", "s3_checksum", "etag", "width", "height")}
    setup.catalog.store(record, {req.algorithm: req.checksum}, [(row, True, _content(setup, row, obj.bucket, obj.key, obj.size))], run_id)


def _link_member(setup: ArchiveSetup, row: RequestRow, member: dict[str, Any], run_id: str) -> None:
    """Answer a request with content already stored as a package member."""
    req, obj = row.request, member["object"]
    row.messages = row.messages + [f"deduplicated: identical content already stored as member {member['name']} of {obj.url}"]
    content = responses.success_content(bucket=obj.bucket, key=obj.key, checksum=req.checksum, algorithm=req.algorithm,
                                        size=member["size"], width=None, height=None, source_url=req.url, small_file_managed=True)
    content["storeFileMetadata"]["storedFileUrl"] = packaging.member_url(obj.bucket, obj.key, member["name"])
    PackageStore(setup.catalog).link_member(row, member, content, run_id)


def _measure_image(result: transfer.StageResult, messages: list[str]) -> tuple[int | None, int | None]:
    stage = result.stage
    try:
        if stage["kind"] == "file":
            size = images.probe_image(stage["path"], complete=True)
        else:
            size = images.probe_image(result.head, complete=False)
        return size.width, size.height
    except images.ImageProbeError as exc:
        messages.append(f"image size not computed: {exc}")
        return None, None


def _fetch_and_stage(setup: ArchiveSetup, row: RequestRow, key: str) -> transfer.StageResult:
    req = row.request
    staging_path = setup.staging_dir / row.tenant / f"{row.pk}-{req.checksum}"
    metadata = {"source-algorithm": req.algorithm, "source-checksum": req.checksum}
    for attempt in range(1, SOURCE_ATTEMPTS + 1):
        try:
            with open_source(req.url, setup.sources) as src:
                return transfer.stage_stream(
                    src.chunks(CHUNK), s3=setup.s3, settings=setup.upload, key=key, algorithm=req.algorithm,
                    expected_checksum=req.checksum, staging_path=staging_path, metadata=metadata,
                )
        except SourceError as exc:
            if not exc.retryable or attempt == SOURCE_ATTEMPTS:
                raise
            log.warning("request %s: source failed (%s), attempt %d of %d", row.request_id, exc.reason, attempt, SOURCE_ATTEMPTS)
            time.sleep(min(2.0**attempt * 0.25, 5.0))
    raise AssertionError("unreachable")


def verify_batch(setup: ArchiveSetup, batch_id: str, tenant: str, run_id: str) -> StepReport:
    """Fetch each claimed request once, verify its checksum, measure it and stage the bytes."""
    report = StepReport(batch_id=batch_id, tenant=tenant)
    verified_keys = {
        (r.algorithm, r.checksum): (r.pk, r.stage, r.size)
        for r in setup.catalog.batch_requests(batch_id, [t.VERIFIED]) if r.stage and r.stage["kind"] != "duplicate"
    }
    for row in setup.catalog.batch_requests(batch_id, [t.CLAIMED]):
        report.considered += 1
        try:
            req = row.request
            existing = setup.catalog.find_object(tenant, req.algorithm, req.checksum)
            if existing is not None:
                _link_existing(setup, row, existing, run_id)
                report.deduplicated += 1
                continue
            member = PackageStore(setup.catalog).find_member(tenant, algorithm=req.algorithm, checksum=req.checksum)
            if member is not None:
                _link_member(setup, row, member, run_id)
                report.deduplicated += 1
                continue
            if (req.algorithm, req.checksum) in verified_keys:
                # The same content earlier in this batch: store it once, answer both.
                first, first_stage, first_size = verified_keys[(req.algorithm, req.checksum)]
                if first_stage["kind"] == "member":
                    stage = first_stage  # joins the same package; the bytes are packed once
                else:
                    stage = {"kind": "duplicate", "of": first}
                setup.catalog.mark_verified(row.pk, size=first_size, width=None, height=None, stage=stage, messages=row.messages)
                report.verified += 1
                continue
            key = keys.object_key(setup.key_prefix, tenant, req.destinationDirectory, req.checksum)
            result = _fetch_and_stage(setup, row, key)
            messages = list(row.messages)
            width = height = None
            if req.computeImageSize:
                width, height = _measure_image(result, messages)
            stage = dict(result.stage, sha256=result.digests[checksums.S3_ALGORITHM])
            if setup.packaging is not None and setup.packaging.threshold_for(tenant) >= result.size and req.activateSmallFilePackaging \
                    and stage["kind"] == "file":
                stage["kind"] = "member"  # waits for its package instead of going up alone
                same = PackageStore(setup.catalog).find_member(tenant, sha256=stage["sha256"])
                same_object = None if same else setup.catalog.find_object(tenant, checksums.S3_ALGORITHM, stage["sha256"])
                if same is not None or same_object is not None:  # announced in another algorithm, already stored
                    Path(stage["path"]).unlink(missing_ok=True)
                    if same is not None:
                        _link_member(setup, row, same, run_id)
                    else:
                        _link_existing(setup, row, same_object, run_id)
                    report.deduplicated += 1
                    continue
            setup.catalog.mark_verified(row.pk, size=result.size, width=width, height=height, stage=stage, messages=messages)
            verified_keys[(req.algorithm, req.checksum)] = (row.pk, stage, result.size)
            report.verified += 1
            report.bytes += result.size
        except transfer.ChecksumMismatch as exc:
            _fail(setup, report, row, f"checksum mismatch: {exc}")
        except SourceError as exc:
            _fail(setup, report, row, f"source {exc.url}: {exc.reason}")
        except (ClientError, BotoCoreError, transfer.StoreError) as exc:
            _fail(setup, report, row, f"upload to S3 failed: {exc}")
        except keys.InvalidKey as exc:
            _fail(setup, report, row, f"object key: {exc}")
        except Exception as exc:  # never let one request stop the batch
            log.exception("request %s failed unexpectedly", row.request_id)
            _fail(setup, report, row, f"internal error: {type(exc).__name__}: {exc}")
    return report


def _fail(setup: ArchiveSetup, report: StepReport, row: RequestRow, reason: str) -> None:
    log.warning("request %s (%s): %s", row.request_id, row.tenant, reason)
    try:
        transfer.discard_stage(setup.s3, row.stage)
    except (ClientError, BotoCoreError, OSError) as exc:
        log.warning("could not discard stage of %s: %s", row.request_id, exc)
    setup.catalog.fail(row.pk, t.ERROR, row.messages + [reason])
    report.failed.append((row.request_id, reason))


def store_batch(setup: ArchiveSetup, batch_id: str, tenant: str, run_id: str) -> StepReport:
    """Complete each verified upload (or put each staged file) and record the object."""
    report = StepReport(batch_id=batch_id, tenant=tenant)
    rows = setup.catalog.batch_requests(batch_id, [t.VERIFIED])
    originals = [r for r in rows if r.stage and r.stage["kind"] in ("file", "multipart")]
    duplicates = [r for r in rows if not r.stage or r.stage["kind"] == "duplicate"]  # package members wait in glacier_packages
    for row in originals:
        report.considered += 1
        req, stage = row.request, row.stage
        assert stage is not None
        try:
            same_content = setup.catalog.find_object(tenant, checksums.S3_ALGORITHM, stage["sha256"])
            same_member = None if same_content else PackageStore(setup.catalog).find_member(tenant, sha256=stage["sha256"])
            if same_content is not None or same_member is not None:
                # Announced in another algorithm than the stored copy, but the same bytes: keep one copy.
                transfer.discard_stage(setup.s3, stage)
                if same_content is not None:
                    _link_existing(setup, row, same_content, run_id)
                else:
                    _link_member(setup, row, same_member, run_id)
                report.deduplicated += 1
                continue
            metadata = {"source-algorithm": req.algorithm, "source-checksum": req.checksum, "sha256": stage["sha256"]}
            done = transfer.commit_stage(setup.s3, setup.upload, stage, metadata)
            record = {
                "tenant": tenant, "bucket": stage["bucket"], "key": stage["key"], "storage_class": setup.upload.storage_class,
                "size": row.size, "sha256": stage["sha256"], "s3_checksum": done["s3_checksum"], "etag": done["etag"],
                "width": row.width, "height": row.height, "run_id": run_id, "batch_id": batch_id,
            }
            content = _content(setup, row, stage["bucket"], stage["key"], row.size or 0)
            setup.catalog.store(record, {req.algorithm: req.checksum, checksums.S3_ALGORITHM: stage["sha256"]}, [(row, False, content)], run_id)
            if stage["kind"] == "file":
                Path(stage["path"]).unlink(missing_ok=True)
            report.stored += 1
            report.bytes += row.size or 0
            report.objects.append({"request": row.request_id, "url": f"s3://{stage['bucket']}/{stage['key']}", "size": row.size})
        except (ClientError, BotoCoreError, transfer.StoreError, OSError) as exc:
            _fail(setup, report, row, f"storing in S3 failed: {exc}")
        except Exception as exc:
            log.exception("request %s failed unexpectedly while storing", row.request_id)
            _fail(setup, report, row, f"internal error: {type(exc).__name__}: {exc}")
    for row in duplicates:
        report.considered += 1
        req = row.request
        existing = setup.catalog.find_object(tenant, req.algorithm, req.checksum)
        member = None if existing else PackageStore(setup.catalog).find_member(tenant, algorithm=req.algorithm, checksum=req.checksum)
        if existing is None and member is None:
            _fail(setup, report, row, "identical content earlier in this batch could not be stored; resubmit")
            continue
        if existing is not None:
            _link_existing(setup, row, existing, run_id)
        else:
            _link_member(setup, row, member, run_id)
        report.deduplicated += 1
    try:
        aborted = transfer.abort_stale_uploads(
            setup.s3, setup.upload.bucket, keys.tenant_prefix(setup.key_prefix, tenant), setup.catalog.open_upload_ids(), setup.stale_upload_age
        )
        report.aborted_uploads = len(aborted)
    except (ClientError, BotoCoreError) as exc:
        log.warning("could not list multipart uploads to clean up: %s", exc)
    return report


def check_batch(setup: ArchiveSetup, batch_id: str) -> tuple[int, list[tuple[str, list[str]]]]:
    """Read back what S3 holds for every object the batch's requests point at."""
    objects = setup.catalog.objects_for_batch(batch_id)
    mismatches = []
    for obj in objects:
        problems = transfer.verify_stored(
            setup.s3, bucket=obj.bucket, key=obj.key, s3_checksum=obj.s3_checksum, size=obj.size, storage_class=obj.storage_class
        )
        if problems:
            mismatches.append((obj.url, problems))
    return len(objects), mismatches
