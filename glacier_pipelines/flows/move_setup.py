"""What the moves share: the setup, requests, outcomes and reports, and where a tenant may move from and to.

Below moves.py (``trash``), move_object.py (one object) and move_prefix.py (a prefix), so that
each builds on it without importing the others back. See flows/moves.py for how moves work.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.catalog import claims as cl
from glacier_pipelines.catalog.claims import ClaimStore
from glacier_pipelines.catalog.moves import MoveStore
from glacier_pipelines.core import keys, lifecycle, pricing
from glacier_pipelines.core.moves import CopySettings, MoveError
from glacier_pipelines.core.objectstore import BucketStores, ObjectStore, bucket_stores

DESTINATIONS = ("in-place", "archive")
MOVED, SKIPPED, FAILED = "MOVED", "SKIPPED", "FAILED"
# Objects another run took care of while this one ran: copied by it, or still being copied when this run ended.
BY_OTHER_RUN, IN_OTHER_RUN = "MOVED_BY_OTHER_RUN", "IN_OTHER_RUN"
LEDGER_EVERY = 500  # outcomes between two writes of the move ledger during a run (and once at its end)


@dataclass
class MoveSetup:
    """Everything a move needs; built by the Dagster resources or by tests."""

    catalog: Catalog
    s3: Any  # the boto3 S3 client every bucket's S3Store is built on (unless ``stores`` gives them)
    bucket: str  # the archive bucket
    key_prefix: str
    lifecycle: lifecycle.LifecycleConfig
    copy: CopySettings  # its storage class is the default target
    pricing: pricing.Pricing | None = None
    claim_timeout: timedelta = cl.CLAIM_TIMEOUT  # a claim older than this (no heartbeat) belongs to a dead run
    wait_for_other_runs: float = 30.0  # seconds a run waits, at its end, for objects other live runs hold
    run_finished: Callable[[str], bool] | None = None  # tells a Dagster run that is over (its claims are taken over)
    stores: BucketStores | None = None  # bucket -> its ObjectStore, in place of S3Store(s3, bucket)

    def object_store(self, bucket: str) -> ObjectStore:
        """The ObjectStore of a bucket moves read or write: the archive bucket, or a source bucket a tenant was granted."""
        return (self.stores or bucket_stores(self.s3))(bucket)

    @property
    def store(self) -> MoveStore:
        return MoveStore(self.catalog)

    @property
    def claims(self) -> ClaimStore:
        return ClaimStore(self.catalog, timeout=self.claim_timeout, run_finished=self.run_finished)


@dataclass
class MoveRequest:
    tenant: str
    url: str
    storage_class: str | None = None  # None: the archive's configured class
    verification: str = "trust-s3"
    destination: str = "in-place"
    checksum: str | None = None  # ALGORITHM:HEX announced by the caller, for a move of one object
    max_objects: int = 100_000  # objects copied per run; the rest wait for the next one
    dry_run: bool = False


@dataclass
class Outcome:
    source: str
    destination: str
    status: str  # MOVED, SKIPPED, FAILED, MOVED_BY_OTHER_RUN, IN_OTHER_RUN
    size: int = 0
    source_class: str = ""
    storage_class: str = ""
    s3_checksum: str | None = None
    checksum_algorithm: str | None = None
    sha256: str | None = None
    verified_against: list[dict[str, str]] = field(default_factory=list)
    parts: int = 0
    copy_requests: int = 0
    messages: list[str] = field(default_factory=list)
    done_by: str | None = None  # the run that copied the object (this run when MOVED), when one did

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "destination": self.destination,
            "status": self.status,
            "sizeInBytes": self.size,
            "sourceClass": self.source_class,
            "storageClass": self.storage_class,
            "s3Checksum": self.s3_checksum,
            "checksumAlgorithm": self.checksum_algorithm,
            "sha256": self.sha256,
            "verifiedAgainst": self.verified_against,
            "parts": self.parts,
            "copyRequests": self.copy_requests,
            "messages": self.messages,
            "doneByRun": self.done_by,
        }


@dataclass
class MoveReport:
    tenant: str
    url: str
    storage_class: str
    verification: str
    planned: int = 0
    planned_bytes: int = 0
    left_for_next_run: int = 0
    estimate: dict[str, Any] | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    run_id: str | None = None

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def bytes_moved(self) -> int:
        return sum(o.size for o in self.outcomes if o.status == MOVED)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == FAILED]

    def copied_by_run(self) -> dict[str, int]:
        """run id -> objects it copied, of those this run planned: this run's MOVED, and the other runs' copies."""
        counts = Counter(o.done_by or "" for o in self.outcomes if o.status in (MOVED, BY_OTHER_RUN))
        return {run: n for run, n in counts.items() if run}

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "url": self.url,
            "storageClass": self.storage_class,
            "verification": self.verification,
            "runId": self.run_id,
            "planned": self.planned,
            "plannedBytes": self.planned_bytes,
            "moved": self.count(MOVED),
            "movedByOtherRuns": self.count(BY_OTHER_RUN),
            "inOtherRuns": self.count(IN_OTHER_RUN),
            "copiedByRun": self.copied_by_run(),
            "skipped": self.count(SKIPPED),
            "failed": self.count(FAILED),
            "bytesMoved": self.bytes_moved,
            "leftForNextRun": self.left_for_next_run,
            "estimate": self.estimate,
            "objects": [o.as_dict() for o in self.outcomes],
        }


def s3_url(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def days_since(value: Any) -> float | None:
    if not isinstance(value, datetime):
        return None
    value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return max((datetime.now(timezone.utc) - value).total_seconds() / 86400, 0.0)


# -- where a tenant may move from and to ----------------------------------------------------------


def allowed_scope(setup: MoveSetup, tenant: str, bucket: str, prefix: str) -> tuple[str, str]:
    """The allowed prefix (the tenant's own, or one of its sources) that contains ``bucket/prefix``.

    Raises MoveError with a message that does not reveal whether the objects exist.
    """
    keys.validate_tenant(tenant)
    t = setup.lifecycle.tenant(tenant)
    scopes = [(setup.bucket, t.own_prefix)] + [(s.bucket, s.prefix) for s in t.sources]
    for scope_bucket, scope_prefix in scopes:
        if bucket == scope_bucket and (prefix.startswith(scope_prefix) or prefix + "/" == scope_prefix):
            return scope_bucket, scope_prefix
    allowed = ", ".join(s3_url(b, p) for b, p in scopes)
    raise MoveError(
        f"tenant {tenant} may not move {s3_url(bucket, prefix)}: only objects under {allowed} "
        "(sources are granted in the lifecycle configuration)"
    )


def destination_for(setup: MoveSetup, tenant: str, bucket: str, key: str, scope: tuple[str, str], destination: str) -> tuple[str, str]:
    if destination == "in-place":
        return bucket, key
    own = setup.lifecycle.tenant(tenant).own_prefix
    if (bucket, scope[1]) == (setup.bucket, own):
        return bucket, key  # already under the tenant's archive prefix
    rel = key[len(scope[1]) :].lstrip("/")
    try:
        clean = keys.sanitize_directory(rel)
    except keys.InvalidKey as exc:
        raise MoveError(f"{s3_url(bucket, key)} cannot become an archive key: {exc}") from None
    if not clean:
        raise MoveError(f"{s3_url(bucket, key)} has no name below {s3_url(*scope)}")
    return setup.bucket, own + clean
