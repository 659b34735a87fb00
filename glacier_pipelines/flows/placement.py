"""Where a tenant's bytes go, and the only place its requests may be deduplicated onto (GLACIER_TENANTS_CONFIG).

``ArchiveSetup.for_tenant`` gives a step the tenant's bucket, prefix, storage class, SSE and
small-file threshold; this module checks that bucket before a step moves any request, and finds
stored content within that placement only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from glacier_pipelines.catalog.placement import PlacementLookups
from glacier_pipelines.core import checksums, faults
from glacier_pipelines.core.objectstore import BucketAdmin, StoreError
from glacier_pipelines.flows import locations

if TYPE_CHECKING:
    from glacier_pipelines.flows.archive import ArchiveSetup


def check_tenant_bucket(setup: ArchiveSetup, tenant: str) -> None:
    """One HeadBucket on a bucket the tenants file gives: a missing or refused one stops the step before any request moves.

    Raises ArchiveFault (kind configuration, naming the tenant and the setting to fix; transient when S3 does not
    answer). Buckets from GLACIER_BUCKET are checked once per pass by the CLI instead.
    """
    if setup.tenants is None or setup.tenants.source is None:
        return
    bucket = setup.for_tenant(tenant).upload.bucket
    try:
        BucketAdmin(setup.s3).check(bucket)
    except StoreError as exc:
        kind = exc.kind
        where = setup.setting(tenant, "bucket")
        if exc.code in ("NoSuchBucket", "404", "NotFound") or exc.status == 404:
            kind, problem = "configuration", f"bucket {bucket!r} does not exist"
        elif kind == "configuration":
            problem = f"S3 refused bucket {bucket!r} ({exc.detail})"
        else:
            problem = f"bucket {bucket!r} could not be reached ({exc.detail})"
        raise faults.ArchiveFault(
            f"tenant {tenant}: {problem} (set by {where}); fix the setting or create the bucket: the tenant's requests keep their place",
            "configuration" if kind == "request" else kind,
        ) from None


def locate(
    setup: ArchiveSetup, tenant: str, *, algorithm: str | None = None, checksum: str | None = None, sha256: str | None = None
) -> locations.Location | None:
    """The first sound location of this content in the tenant's current placement (bucket, prefix, class), as
    ``locations.locate`` does for the whole tenant: content elsewhere (another bucket, prefix or class) is stored again."""
    lookups = PlacementLookups(setup.catalog, tenant, *setup.placement(tenant))
    for _ in range(locations.MAX_LOCATIONS_TRIED):
        if sha256 is not None:
            obj = lookups.find_object(checksums.S3_ALGORITHM, sha256)
            member = None if obj else lookups.find_member(sha256=sha256)
        else:
            assert algorithm is not None and checksum is not None
            obj = lookups.find_object(algorithm, checksum)
            member = None if obj else lookups.find_member(algorithm=algorithm, checksum=checksum)
        if obj is None and member is None:
            return None
        if obj is not None:
            location = locations.Location(obj)
        else:
            assert member is not None  # both None returned above
            location = locations.Location(member["object"], member)
        problems = locations.problems_at(setup.objects, location.object)
        if not problems:
            return location
        locations.flag(setup.catalog, location.object, "; ".join(problems))
    return None
