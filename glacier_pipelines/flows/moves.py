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

Here: ``trash``, and every name callers use. move_setup.py holds the setup, requests, outcomes
and reports, and where a tenant may move from and to; move_object.py moves one object,
move_prefix.py plans and runs the moves of a prefix. Every S3 call goes through the storage
port (core/objectstore), one ObjectStore per bucket.
"""

from __future__ import annotations

import logging

from glacier_pipelines.catalog import claims as cl
from glacier_pipelines.catalog import moves as mv
from glacier_pipelines.core import keys, moves
from glacier_pipelines.core.moves import MoveError
from glacier_pipelines.flows.move_ledger import record as record_ledger
from glacier_pipelines.flows.move_object import move_object
from glacier_pipelines.flows.move_prefix import estimate, move, plan  # noqa: F401  (a prefix's moves, here for their callers)
from glacier_pipelines.flows.move_setup import (  # noqa: F401  (the shared names, here for their callers)
    BY_OTHER_RUN,
    DESTINATIONS,
    FAILED,
    IN_OTHER_RUN,
    LEDGER_EVERY,
    MOVED,
    SKIPPED,
    MoveReport,
    MoveRequest,
    MoveSetup,
    Outcome,
    allowed_scope,
    destination_for,
    s3_url,
)

log = logging.getLogger(__name__)


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
    url = s3_url(obj.bucket, obj.key)
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
        raise MoveError(f"{url} is not under tenant {tenant}'s prefix {s3_url(setup.bucket, t.own_prefix)}: it has no trash there")
    dest_key = t.trash_key_prefix + obj.key[len(t.own_prefix) :]
    run = run_id or cl.local_run_id()
    claims, key = setup.claims, cl.claim_key(obj.bucket, obj.key)
    claim = claims.claim(cl.MOVE, key, run, subject=url)
    if not claim.won:
        return Outcome(
            source=url,
            destination=s3_url(obj.bucket, dest_key),
            status=IN_OTHER_RUN,
            size=obj.size,
            storage_class=obj.storage_class,
            done_by=claim.holder,
            messages=[f"being moved by run {claim.holder} (it holds the object's claim): trash it again once it is done"],
        )
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
