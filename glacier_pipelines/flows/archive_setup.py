"""What the archive steps share: the setup, the report, and how a step ends one request.

A request is held (a transient or configuration fault: it keeps its place), failed (``ERROR``
with the reason), or linked (answered from content already stored). Here, below archive.py and
verifier.py, so that both build on it without importing each other.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from glacier_pipelines.catalog import Catalog, RequestRow, StoredObject
from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.packages import PackageStore
from glacier_pipelines.core import faults, keys, packaging, responses, staging, transfer
from glacier_pipelines.core.objectstore import ObjectStore, S3Store, StoreError
from glacier_pipelines.core.sources import SourcePolicy
from glacier_pipelines.core.tenants import TenantsConfig
from glacier_pipelines.flows import locations
from glacier_pipelines.flows.store_faults import cause, described

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
    fetch_processes: int | None = None  # GLACIER_FETCH_PROCESSES: worker processes reading many local small files (None: by cores)

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
    reason = described(exc)  # in S3's words: the boto3 error a StoreError wraps
    if setup is not None and faults.error_code(cause(exc)) == "NoSuchBucket":
        bucket = setup.for_tenant(row.tenant).upload.bucket
        reason = f"tenant {row.tenant}: bucket {bucket!r} does not exist (set by {setup.setting(row.tenant, 'bucket')}): create it or fix the setting"
    log.warning("request %s (%s) kept for a later pass: S3 %s fault: %s", row.request_id, row.tenant, kind, reason)
    report.held.append((row.request_id, reason))
    fault = faults.ArchiveFault(f"S3 {kind} fault, the batch stopped and its requests keep their place: {reason}", kind)
    fault.report = report  # type: ignore[attr-defined]
    return fault


def is_held(exc: BaseException) -> bool:
    return isinstance(exc, (StoreError, ClientError, BotoCoreError)) and faults.classify(exc) != "request"


def answer_content(setup: ArchiveSetup, row: RequestRow, bucket: str, key: str, size: int) -> dict[str, Any]:
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
    setup.catalog.store(
        record, {req.algorithm: req.checksum}, [(row, True, answer_content(setup, row, obj.bucket, obj.key, obj.size))], run_id
    )


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


def link(setup: ArchiveSetup, row: RequestRow, found: locations.Location, run_id: str) -> None:
    """Answer a request from the content index: no new bytes."""
    if found.member is not None:
        _link_member(setup, row, found.member, run_id)
    else:
        _link_existing(setup, row, found.object, run_id)


def fail(setup: ArchiveSetup, report: StepReport, row: RequestRow, reason: str) -> None:
    log.warning("request %s (%s): %s", row.request_id, row.tenant, reason)
    try:
        transfer.discard_stage(setup.objects, row.stage)
    except (StoreError, OSError) as exc:
        log.warning("could not discard stage of %s: %s", row.request_id, exc)
    setup.catalog.fail(row.pk, t.ERROR, row.messages + [reason])
    report.failed.append((row.request_id, reason))
