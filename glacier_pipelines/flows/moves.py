"""Moves of objects already in S3 into an archive class by server-side copies, and soft deletes into the trash.

A move names a tenant and an ``s3://bucket/key`` (one object) or ``s3://bucket/prefix/``
(every object under it). The tenant may only move objects under its own prefix in the archive
bucket, or under the sources its lifecycle declaration grants it. Each object is copied onto
itself in the target class (or onto the tenant's archive key, then the source is deleted),
checked, and recorded in the catalog like any archived object.

Resumable, and never twice: every object's progress is a row of ``moves``; a rerun after a
crash finds what was copied (the object already in the target class at its destination) and
records it without a second copy. Concurrent runs over the same objects copy each once: a run
claims each object in the catalog (catalog/claims.py) before any byte moves, leaves an object
another live run holds to that run, and reports it as that run's ("copied by run X").

Here: the setup, requests and reports, where a tenant may move from and to, and ``trash``;
move_object.py moves one object, move_prefix.py plans and runs the moves of a prefix. Every
S3 call goes through the storage port (core/objectstore), one ObjectStore per bucket.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.catalog import claims as cl
from glacier_pipelines.catalog import moves as mv
from glacier_pipelines.catalog.claims import ClaimStore
from glacier_pipelines.catalog.moves import MoveStore
from glacier_pipelines.core import keys, lifecycle, moves, pricing
from glacier_pipelines.core.moves import CopySettings, MoveError
from glacier_pipelines.core.objectstore import BucketStores, ObjectStore, bucket_stores
from glacier_pipelines.flows.move_ledger import record as record_ledger

log = logging.getLogger(__name__)
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


def _url(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def _days_since(value: Any) -> float | None:
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
    allowed = ", ".join(_url(b, p) for b, p in scopes)
    raise MoveError(
        f"tenant {tenant} may not move {_url(bucket, prefix)}: only objects under {allowed} "
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
        raise MoveError(f"{_url(bucket, key)} cannot become an archive key: {exc}") from None
    if not clean:
        raise MoveError(f"{_url(bucket, key)} has no name below {_url(*scope)}")
    return setup.bucket, own + clean


# -- soft delete ----------------------------------------------------------------------------------


def trash(setup: MoveSetup, tenant: str, request_id: str, *, verification: str = "trust-s3", run_id: str | None = None) -> Outcome:
    """Soft-delete one archived file: mark it in the catalog and move its object under the tenant's trash prefix.

    One server-side copy in the object's own class, then the original key is deleted; the
    trash prefix's lifecycle rules transition and expire it from there. The object keeps its
    catalog row (restores by request id or URL still find it) but leaves the content lookups.
    A file whose object other requests still use is marked only; the last one moves it.
    """
    keys.validate_tenant(tenant)
    store = setup.store
    req, obj, package = store.request_object(tenant, request_id)
    if req is None or req["status"] != "SUCCESS" or obj is None:
        raise MoveError(f"tenant {tenant} has no archived file with request id {request_id!r}")
    if package is not None:
        raise MoveError(f"request {request_id} is a member of package {package}: packages are trashed whole, not by member")
    t = setup.lifecycle.tenant(tenant)
    url = _url(obj.bucket, obj.key)
    if request_id in store.trashed_requests(tenant):
        return Outcome(
            source=url,
            destination=url,
            status=SKIPPED,
            size=obj.size,
            storage_class=obj.storage_class,
            messages=[f"request {request_id} is already in the trash"],
        )
    others = [r for r in store.requests_using(tenant, obj.id) if r != request_id and r not in store.trashed_requests(tenant)]
    if obj.key.startswith(t.trash_key_prefix) or others:
        message = (
            f"object kept at {url}: still used by request(s) {', '.join(others[:10])}"
            if others
            else f"{url} is already under the trash prefix"
        )
        move_id = store.begin(
            tenant=tenant,
            kind=mv.TRASH,
            bucket=obj.bucket,
            source_key=obj.key,
            dest_bucket=obj.bucket,
            dest_key=obj.key,
            storage_class=obj.storage_class,
            verification=verification,
            status=mv.DONE,
            request_id=request_id,
            run_id=run_id,
            object_id=obj.id,
            size=obj.size,
            messages=[message],
        )
        log.info("trash %s (move %s): %s", request_id, move_id, message)
        record_ledger(setup, tenant)
        return Outcome(source=url, destination=url, status=SKIPPED, size=obj.size, storage_class=obj.storage_class, messages=[message])
    if obj.bucket != setup.bucket or not obj.key.startswith(t.own_prefix):
        raise MoveError(f"{url} is not under tenant {tenant}'s prefix {_url(setup.bucket, t.own_prefix)}: it has no trash there")
    dest_key = t.trash_key_prefix + obj.key[len(t.own_prefix) :]
    run = run_id or cl.local_run_id()
    claims, key = setup.claims, cl.claim_key(obj.bucket, obj.key)
    claim = claims.claim(cl.MOVE, key, run, subject=url)
    if not claim.won:
        return Outcome(
            source=url,
            destination=_url(obj.bucket, dest_key),
            status=IN_OTHER_RUN,
            size=obj.size,
            storage_class=obj.storage_class,
            done_by=claim.holder,
            messages=[f"being moved by run {claim.holder} (it holds the object's claim): trash it again once it is done"],
        )
    from glacier_pipelines.flows.move_object import move_object  # it builds on this module

    finished = False
    try:
        h = moves.head(setup.object_store(obj.bucket), obj.key)
        storage_class = h.storage_class if h is not None else obj.storage_class
        outcome = move_object(
            setup,
            tenant=tenant,
            bucket=obj.bucket,
            key=obj.key,
            dest_bucket=obj.bucket,
            dest_key=dest_key,
            storage_class=storage_class,
            verification=verification,
            kind=mv.TRASH,
            request_id=request_id,
            run_id=run,
            heartbeat=lambda: claims.heartbeat(cl.MOVE, key, run),
        )
        finished = True
        return outcome
    finally:
        (claims.done if finished else claims.release)(cl.MOVE, key, run)
        record_ledger(setup, tenant)


_PREFIX_MOVES = ("estimate", "move", "plan")
_OBJECT_MOVES = ("move_object",)


def __getattr__(name: str) -> Any:
    """The move of one object (move_object) lives in move_object.py, those of a prefix (plan, estimate, move) in
    move_prefix.py; both build on this module: found here on first use."""
    if name in _PREFIX_MOVES:
        from glacier_pipelines.flows import move_prefix

        return getattr(move_prefix, name)
    if name in _OBJECT_MOVES:
        from glacier_pipelines.flows import move_object

        return getattr(move_object, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
