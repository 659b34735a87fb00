"""What restore.py and restore_delivery.py share: the setup, the report, and the fall-back to another copy.

Below both, so that the delivery builds on it without importing restore.py back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.catalog import claims as cl
from glacier_pipelines.catalog.claims import ClaimStore
from glacier_pipelines.catalog.restores import RestoreStore
from glacier_pipelines.core import pricing
from glacier_pipelines.core.objectstore import ObjectStore, bucket_stores
from glacier_pipelines.flows import locations


@dataclass
class RestoreSetup:
    catalog: Catalog
    s3: Any  # a boto3 S3 client: each bucket's ObjectStore is built on it (``objects``)
    pricing: pricing.Pricing | None
    send_email: Callable[[Any], None] | None  # None: no SMTP configured (the link stays in the catalog and report)
    sender: str = "glacier-pipelines@localhost"
    max_link_seconds: int = 7 * 24 * 3600
    claim_timeout: timedelta = cl.CLAIM_TIMEOUT
    run_finished: Callable[[str], bool] | None = None  # tells a Dagster run that is over (its claims are taken over)

    @property
    def store(self) -> RestoreStore:
        return RestoreStore(self.catalog)

    def objects(self, bucket: str) -> ObjectStore:
        """The ObjectStore of a bucket the catalog recorded (a tenant's objects may live in several)."""
        return bucket_stores(self.s3)(bucket)

    @property
    def claims(self) -> ClaimStore:
        return ClaimStore(self.catalog, timeout=self.claim_timeout, run_finished=self.run_finished)


@dataclass
class RestoreReport:
    tenant: str
    started: int = 0
    already: int = 0
    direct: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    verified: int = 0
    mismatched: list[tuple[str, str]] = field(default_factory=list)
    ready: int = 0
    notified: int = 0
    expired: int = 0
    tiers: dict[str, int] = field(default_factory=dict)
    joined: list[tuple[str, str]] = field(default_factory=list)  # (object URL, run) whose restore another run started
    left_to_others: list[tuple[str, str]] = field(default_factory=list)  # (object URL, run) another live run holds


def restore_member(location: locations.Location) -> dict[str, Any] | None:
    m = location.member
    return None if m is None else {"name": m["name"], "offset": m["offset"], "length": m["length"], "sha256": m["sha256"]}


def sound_copy(setup: RestoreSetup, tenant: str, obj: Any, member: dict[str, Any] | None) -> locations.Location | None:
    """Another location of the same content that S3 still holds (the content index with fallback)."""
    return locations.locate(setup.catalog, setup.objects, tenant, sha256=member["sha256"] if member else obj.sha256)


def fall_back(
    setup: RestoreSetup, rows: list[dict[str, Any]], obj: Any, reason: str, run_id: str, member: str = ""
) -> list[dict[str, Any]]:
    """Flag a location whose restored bytes were bad and point its rows at another copy; returns the rows left without one."""
    locations.flag(setup.catalog, obj, reason, member)
    left = []
    for row in rows:
        alt = sound_copy(setup, row["tenant"], obj, row.get("member"))
        if alt is None:
            left.append(row)
            continue
        setup.store.update(
            [row["id"]],
            status="PENDING",
            run_id=run_id,
            object_id=alt.object.id,
            member=restore_member(alt),
            add_message=f"{reason}; the same content at {alt.url} is restored instead",
        )
    return left
