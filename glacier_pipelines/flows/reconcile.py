"""Catalog against bucket, per tenant: what the catalog names but S3 lacks, what S3 holds that no row names, stale uploads.

The catalog is read before the bucket is listed. An object is recorded only after S3 accepted
it, so a file stored while the reconciliation runs can show up as unnamed (harmless, reported),
never as missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.catalog.reconcile import ReconcileQueries
from glacier_pipelines.core import keys
from glacier_pipelines.core.ledger import is_ledger_key
from glacier_pipelines.core.objectstore import BucketStores, ObjectStore, bucket_stores
from glacier_pipelines.core.tenants import TenantsConfig

STALE_UPLOAD_AGE = timedelta(days=1)


@dataclass
class ReconcileReport:
    tenant: str
    bucket: str
    prefix: str
    catalog_keys: int = 0
    bucket_keys: int = 0
    missing: list[str] = field(default_factory=list)  # named by the catalog, absent from S3
    unnamed: list[tuple[str, int]] = field(default_factory=list)  # (key, size) in S3, named by no catalog row
    aborted_uploads: list[tuple[str, str]] = field(default_factory=list)  # (key, upload id)
    elsewhere: int = 0  # catalog rows of the tenant in another bucket or outside the prefix (not compared here)
    restored_copies: int = 0  # STANDARD copies of restored package members under <prefix>restored/ (temporary, not archive)
    ledger_objects: int = 0  # the request ledger under <prefix>ledger/ (what a catalog rebuild reads)


def catalog_keys(catalog: Catalog, tenant: str, bucket: str, prefix: str) -> tuple[set[str], int]:
    """Keys the catalog names for the tenant under ``prefix`` in ``bucket``: objects (standalone and packages) and package
    manifests; and how many of its object rows lie elsewhere (another bucket or prefix, e.g. before a configuration change)."""
    rows = ReconcileQueries(catalog).named_keys(tenant)
    named = {r.key for r in rows if r.bucket == bucket and r.key.startswith(prefix)}
    elsewhere = sum(1 for r in rows if r.kind == "object" and (r.bucket != bucket or not r.key.startswith(prefix)))
    return named, elsewhere


def list_keys(store: ObjectStore, prefix: str) -> dict[str, int]:
    """key -> size of every object under ``prefix``."""
    return {entry.key: entry.size for entry in store.list(prefix)}


def reconcile_placed(
    catalog: Catalog,
    stores: BucketStores | Any,
    tenants: TenantsConfig,
    tenant: str,
    *,
    now: datetime | None = None,
    stale_after: timedelta = STALE_UPLOAD_AGE,
) -> ReconcileReport:
    """:func:`reconcile` against where the tenant stores (GLACIER_TENANTS_CONFIG's bucket and prefix, else the global ones)."""
    bucket, prefix, _ = tenants.placement(tenant)
    return _reconcile(catalog, bucket_stores(stores)(bucket), bucket, prefix, tenant, now=now, stale_after=stale_after)


def reconcile(
    catalog: Catalog,
    stores: BucketStores | Any,
    bucket: str,
    key_prefix: str,
    tenant: str,
    *,
    now: datetime | None = None,
    stale_after: timedelta = STALE_UPLOAD_AGE,
) -> ReconcileReport:
    """Compare the tenant's catalog rows with its prefix in the bucket, and abort its multipart uploads older than ``stale_after``.
    ``stores``: bucket -> its ObjectStore (objectstore.bucket_stores), or the boto3 client to build them on."""
    prefix = keys.tenant_prefix(key_prefix, tenant)
    return _reconcile(catalog, bucket_stores(stores)(bucket), bucket, prefix, tenant, now=now, stale_after=stale_after)


def _reconcile(
    catalog: Catalog, store: ObjectStore, bucket: str, prefix: str, tenant: str, *, now: datetime | None, stale_after: timedelta
) -> ReconcileReport:
    report = ReconcileReport(tenant=tenant, bucket=bucket, prefix=prefix)
    named, report.elsewhere = catalog_keys(catalog, tenant, bucket, prefix)
    keep = catalog.open_upload_ids()  # read with the catalog, before S3: uploads that verified requests wait on
    listed = list_keys(store, prefix)
    report.ledger_objects = sum(1 for k in listed if is_ledger_key(k))  # what a rebuild reads: named by no row, by design
    listed = {k: size for k, size in listed.items() if not is_ledger_key(k)}
    report.catalog_keys, report.bucket_keys = len(named), len(listed)
    report.missing = sorted(named - listed.keys())
    restored = f"{prefix}restored/"  # where restore delivery copies package members for their download links
    report.restored_copies = sum(1 for k in listed if k.startswith(restored))
    report.unnamed = sorted((k, listed[k]) for k in listed.keys() - named if not k.startswith(restored))
    report.aborted_uploads = abort_stale_uploads(store, prefix, keep, (now or datetime.now(timezone.utc)) - stale_after)
    return report


def abort_stale_uploads(store: ObjectStore, prefix: str, keep: set[str], cutoff: datetime) -> list[tuple[str, str]]:
    """Abort the multipart uploads under ``prefix`` begun before ``cutoff`` that nothing waits on (not in ``keep``);
    (key, upload id) of each. The same sweep as core/transfer's, through the port."""
    aborted = []
    for pending in store.uploads(prefix):
        if pending.upload.upload_id in keep or pending.initiated > cutoff:
            continue
        store.abort(pending.upload)
        aborted.append((pending.upload.key, pending.upload.upload_id))
    return aborted
