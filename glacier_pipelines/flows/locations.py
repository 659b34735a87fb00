"""The content index with fallback: the same content may live at several locations.

A location is a standalone object or a member of a package. Before a request is answered
from the index, or a restore is pointed at a location, the location is checked against S3;
one that is missing or whose checksum or size differs is flagged (never offered again) and
the next location of the same content is tried. With none left, the caller stores the
content anew, which makes a fresh location.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from glacier_pipelines.catalog import Catalog, StoredObject
from glacier_pipelines.catalog.packages import PackageStore
from glacier_pipelines.core import checksums, packaging, transfer
from glacier_pipelines.core.objectstore import BucketStores, StoreError
from glacier_pipelines.flows.store_faults import said

log = logging.getLogger(__name__)
MAX_LOCATIONS_TRIED = 8  # bounded: each try is one HEAD


@dataclass
class Location:
    object: StoredObject
    member: dict[str, Any] | None = None  # name, offset, length, sha256, size when a package member

    @property
    def url(self) -> str:
        if self.member is None:
            return self.object.url
        return packaging.member_url(self.object.bucket, self.object.key, self.member["name"])


def problems_at(stores: BucketStores, obj: StoredObject) -> list[str]:
    """What S3 says is wrong with a stored object: missing, or another checksum or size.

    A storage-class difference is not a problem here (lifecycle rules move objects between
    classes), and a transient S3 error is not evidence against the object.
    """
    try:
        found = transfer.verify_stored(
            stores(obj.bucket), key=obj.key, s3_checksum=obj.s3_checksum, size=obj.size, storage_class=obj.storage_class
        )
    except StoreError as exc:
        log.warning("could not check %s (%s); trusting the catalog this time", obj.url, said(exc))
        return []
    return [p for p in found if not p.startswith("storage class:") and not p.startswith("HEAD failed")]


def locate(
    catalog: Catalog,
    stores: BucketStores,
    tenant: str,
    *,
    algorithm: str | None = None,
    checksum: str | None = None,
    sha256: str | None = None,
) -> Location | None:
    """The first sound location of this content for ``tenant`` (by SHA-256, or by an announced checksum), each checked
    in the store of its bucket (``stores``)."""
    packages = PackageStore(catalog)
    for _ in range(MAX_LOCATIONS_TRIED):
        if sha256 is not None:
            obj = catalog.find_object(tenant, checksums.S3_ALGORITHM, sha256)
            member = None if obj else packages.find_member(tenant, sha256=sha256)
        else:
            assert algorithm is not None and checksum is not None
            obj = catalog.find_object(tenant, algorithm, checksum)
            member = None if obj else packages.find_member(tenant, algorithm=algorithm, checksum=checksum)
        if obj is None and member is None:
            return None
        if obj is not None:
            location = Location(obj)
        else:
            assert member is not None  # both None returned above
            location = Location(member["object"], member)
        problems = problems_at(stores, location.object)
        if not problems:
            return location
        flag(catalog, location.object, "; ".join(problems))
    return None


def flag(catalog: Catalog, obj: StoredObject, reason: str, member: str = "") -> None:
    """Mark a location bad so that nothing is deduplicated onto it or restored from it again."""
    where = f"{obj.url} member {member}" if member else obj.url
    log.warning("location %s flagged: %s", where, reason)
    catalog.flag_location(obj.id, reason, member)
