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
from glacier_pipelines.core import checksums, keys, lifecycle, moves, pricing
from glacier_pipelines.core.moves import ChecksumMismatch, CopySettings, MoveError, Reference
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
    s3: Any  # a boto3 S3 client
    bucket: str  # the archive bucket
    key_prefix: str
    lifecycle: lifecycle.LifecycleConfig
    copy: CopySettings  # its storage class is the default target
    pricing: pricing.Pricing | None = None
    claim_timeout: timedelta = cl.CLAIM_TIMEOUT  # a claim older than this (no heartbeat) belongs to a dead run
    wait_for_other_runs: float = 30.0  # seconds a run waits, at its end, for objects other live runs hold
    run_finished: Callable[[str], bool] | None = None  # tells a Dagster run that is over (its claims are taken over)

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


# -- one object -----------------------------------------------------------------------------------


def _references(
    setup: MoveSetup, bucket: str, key: str, h: dict[str, Any], announced: tuple[str, str] | None
) -> tuple[list[Reference], Any]:
    refs = []
    if announced:
        refs.append(Reference("announced", *announced))
    obj, known = setup.store.object_at(bucket, key)
    if obj is not None:
        if obj.sha256:
            refs.append(Reference("catalog", checksums.S3_ALGORITHM, obj.sha256.lower()))
        refs += [Reference("catalog", a, v.lower()) for a, v in known.items() if a != checksums.S3_ALGORITHM]
    refs += moves.metadata_references(h)
    return refs, obj


def move_object(
    setup: MoveSetup,
    *,
    tenant: str,
    bucket: str,
    key: str,
    dest_bucket: str,
    dest_key: str,
    storage_class: str,
    verification: str,
    announced: tuple[str, str] | None = None,
    kind: str = mv.MOVE,
    request_id: str = "",
    run_id: str | None = None,
    keep_source: bool = False,
    heartbeat: Callable[[], Any] | None = None,
) -> Outcome:
    """Move one object by a server-side copy, verify it as asked and record it; raises MoveError (and ClientError) on refusal.

    The caller holds the object's claim (``heartbeat`` refreshes it during a multipart copy).
    """
    if verification not in moves.VERIFICATIONS:
        raise MoveError(f"verification {verification!r} is not one of {', '.join(moves.VERIFICATIONS)}")
    store = setup.store
    source_url, dest_url = _url(bucket, key), _url(dest_bucket, dest_key)
    in_place = (bucket, key) == (dest_bucket, dest_key)
    out = Outcome(source=source_url, destination=dest_url, status=MOVED, storage_class=storage_class)
    row = store.get(kind, bucket, key, dest_bucket, dest_key, request_id)
    h = moves.head(setup.s3, bucket, key)
    dest_h = h if in_place else moves.head(setup.s3, dest_bucket, dest_key)
    settings = CopySettings(
        storage_class=storage_class,
        multipart_threshold=setup.copy.multipart_threshold,
        part_size=setup.copy.part_size,
        concurrency=setup.copy.concurrency,
    )
    base: dict[str, Any] = {
        "tenant": tenant,
        "kind": kind,
        "bucket": bucket,
        "source_key": key,
        "dest_bucket": dest_bucket,
        "dest_key": dest_key,
        "storage_class": storage_class,
        "verification": verification,
        "request_id": request_id,
        "run_id": run_id,
    }

    if h is None:
        if not in_place and row is not None and row["status"] in (mv.COPIED, *mv.FINISHED) and dest_h is not None:
            out.status, out.size = SKIPPED, int(dest_h["ContentLength"])
            out.messages.append(f"already moved to {dest_url}")
            if row["status"] == mv.COPIED:
                store.update(row["id"], status=mv.DONE, messages=list(row["messages"] or []) + ["source deleted"])
            return out
        raise MoveError(f"{source_url} does not exist (nothing to move)")
    out.size, out.source_class = int(h["ContentLength"]), moves.storage_class_of(h)

    # Already where it should be: no copy, just the record (a rerun after a crash lands here).
    adopted = False
    if dest_h is not None and moves.storage_class_of(dest_h) == storage_class:
        if in_place:
            adopted = True
        else:
            same = int(dest_h["ContentLength"]) == out.size and (
                (row is not None and row["status"] in (mv.COPYING, mv.COPIED) and row["source_etag"] == h["ETag"])
                or (dest_h.get("ChecksumSHA256") and dest_h.get("ChecksumSHA256") == h.get("ChecksumSHA256"))
            )
            if not same:
                raise MoveError(f"{dest_url} already exists and does not hold a copy of {source_url}: not overwritten")
            adopted = True
    elif dest_h is not None and not in_place:
        raise MoveError(f"{dest_url} already exists (in {moves.storage_class_of(dest_h)}): not overwritten")

    references, _ = _references(setup, bucket, key, h, announced)
    what = f"{source_url}"
    if adopted and row is not None and row["status"] == mv.FAILED and row["source_etag"] == h["ETag"]:
        # Copied, then found wrong: never recorded as archived, however often the move is run again.
        raise ChecksumMismatch(
            f"{what}: an earlier move of this object failed its verification and is not recorded: " + "; ".join(row["messages"] or [])
        )
    if adopted:
        # Verified (or trusted) when it was copied, if this project copied it: the row remembers how.
        held = dest_h or h
        out.status = SKIPPED
        out.messages.append(f"already in {storage_class} at {dest_url}: no copy made")
        if verification == "stream" and (row or {}).get("verification") != "stream" and not moves.readable(held):
            out.messages.append(f"not streamed: S3 serves {storage_class} bytes only from a restored copy")
        s3_sum = held.get("ChecksumSHA256") or (row or {}).get("s3_checksum") or ""
        composite = held.get("ChecksumType") == "COMPOSITE" or moves.is_multipart(held)
        sha = (row or {}).get("sha256") or (None if composite else moves.b64_to_hex(s3_sum))
        catalog_sha = next((r.hex for r in references if r.source == "catalog" and r.algorithm == checksums.S3_ALGORITHM), None)
        if sha and catalog_sha and sha != catalog_sha:
            raise ChecksumMismatch(f"{what}: S3 holds SHA-256 {sha}, the catalog has {catalog_sha}")
        sha = sha or catalog_sha
        out.s3_checksum, out.sha256 = s3_sum, sha
        out.checksum_algorithm = (row or {}).get("checksum_algorithm") or f"SHA256 ({'COMPOSITE' if composite else 'FULL_OBJECT'})"
        out.verified_against = list((row or {}).get("verified_against") or [])
        move_id = (row or {}).get("id") or store.begin(
            **base, status=mv.COPYING, source_etag=h["ETag"], source_class=out.source_class, size=out.size, messages=[]
        )
        _record(
            setup,
            move_id,
            out,
            tenant=tenant,
            bucket=bucket,
            key=key,
            dest_bucket=dest_bucket,
            dest_key=dest_key,
            storage_class=storage_class,
            etag=(held.get("ETag") or "").strip('"'),
            run_id=run_id,
            kind=kind,
            extra_checksums={r.algorithm: r.hex for r in references if r.source == "catalog"},
            status=mv.COPIED if not in_place else mv.DONE,
        )
        _finish_source(setup, out, bucket, key, in_place, keep_source, move_id)
        return out

    if not moves.readable(h):
        raise MoveError(
            f"{source_url} is in {out.source_class}: S3 copies such objects only from a restored copy "
            f"(glacier-pipelines restore first); a lifecycle rule can move GLACIER objects on to DEEP_ARCHIVE"
        )
    moves.sse_args(h)  # refuses SSE-C before anything is read or copied

    ranges = moves.copy_ranges(out.size, settings)
    known_by_s3 = moves.s3_references(h)
    verified: list[Reference] = []
    streamed = None
    try:
        if verification == "stream":
            streamed = moves.stream(
                setup.s3, bucket=bucket, key=key, etag=h["ETag"], algorithms={r.algorithm for r in references}, ranges=ranges
            )
            if streamed.size != out.size:
                raise ChecksumMismatch(f"{what}: {streamed.size} bytes read, S3 reports {out.size}")
            verified = moves.compare(references + known_by_s3, streamed.digests, what)
            if not any(r.source in ("announced", "catalog", "metadata") for r in verified):
                out.messages.append(
                    "no checksum was announced or known for this object: the streamed SHA-256 is checked against "
                    "S3's checksum of the copy only"
                )
        else:
            verified = moves.check_references_agree(references + known_by_s3, what)
            verified = [r for r in verified if r.source not in ("s3", "s3-etag")] or verified
    except ChecksumMismatch as exc:
        move_id = store.begin(
            **base, status=mv.FAILED, source_etag=h["ETag"], source_class=out.source_class, size=out.size, messages=[str(exc)]
        )
        raise

    move_id = store.begin(
        **base,
        status=mv.COPYING,
        source_etag=h["ETag"],
        source_class=out.source_class,
        size=out.size,
        sha256=streamed.digests[checksums.S3_ALGORITHM] if streamed else None,
        verified_against=[r.as_dict() for r in verified],
        messages=list(out.messages),
    )
    # CopyObject copies tags itself; CreateMultipartUpload must be given them.
    tags = setup.s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"] if ranges else None
    copy = moves.server_side_copy(
        setup.s3,
        bucket=bucket,
        key=key,
        dest_bucket=dest_bucket,
        dest_key=dest_key,
        source_head=h,
        settings=settings,
        tags=tags,
        on_part=heartbeat,
    )
    store.update(move_id, copied_by=run_id)  # S3 made the copy: whatever follows, this run made it
    out.parts, out.copy_requests, out.done_by = copy.parts, copy.requests, run_id
    out.s3_checksum, out.checksum_algorithm = copy.s3_checksum, copy.algorithm
    sha = streamed.digests[checksums.S3_ALGORITHM] if streamed else None
    if sha is None:
        sha = copy.sha256_hex or next((r.hex for r in references if r.source == "catalog" and r.algorithm == checksums.S3_ALGORITHM), None)
    try:
        checked = moves.check_copy(copy, sha256_hex=sha, composite=streamed.composite if streamed else None, what=what)
        if checked:
            out.messages.append(checked)
        if verification == "trust-s3":
            # What S3 computed for the copy settles references of its algorithm, without reading a byte.
            copy_digests = {checksums.S3_ALGORITHM: copy.sha256_hex} if copy.sha256_hex else {}
            verified += [r for r in moves.compare(references, copy_digests, what) if r not in verified]
            settled = {r.algorithm for r in known_by_s3} | set(copy_digests)
            for ref in references:
                if ref.algorithm not in settled:
                    out.messages.append(
                        f"{moves.label(ref)} ({ref.algorithm}) was not verified: "
                        f"S3 holds no {ref.algorithm} of this object "
                        "(move with verification 'stream' to read it once and check)"
                    )
    except ChecksumMismatch as exc:
        store.update(move_id, status=mv.FAILED, messages=out.messages + [str(exc)])
        raise
    if copy.checksum_type == "COMPOSITE" and not sha:
        out.messages.append(
            "no SHA-256 of the whole object is known (S3 reports a composite of parts above the copy threshold): "
            "restores of it cannot be verified; move with verification 'stream' to record one"
        )
    out.sha256 = sha
    out.verified_against = [r.as_dict() for r in verified]
    digests = {r.algorithm: r.hex for r in verified if r.source != "s3-etag"}
    if streamed:
        digests.update({a: v for a, v in streamed.digests.items() if a in {r.algorithm for r in verified} or a == checksums.S3_ALGORITHM})
    _record(
        setup,
        move_id,
        out,
        tenant=tenant,
        bucket=bucket,
        key=key,
        dest_bucket=dest_bucket,
        dest_key=dest_key,
        storage_class=storage_class,
        etag=copy.etag,
        run_id=run_id,
        kind=kind,
        extra_checksums=digests,
        status=mv.COPIED if not in_place else mv.DONE,
    )
    _finish_source(setup, out, bucket, key, in_place, keep_source, move_id)
    return out


def _record(
    setup: MoveSetup,
    move_id: int,
    out: Outcome,
    *,
    tenant: str,
    bucket: str,
    key: str,
    dest_bucket: str,
    dest_key: str,
    storage_class: str,
    etag: str,
    run_id: str | None,
    kind: str,
    extra_checksums: dict[str, str],
    status: str,
) -> None:
    digests = dict(extra_checksums)
    if out.sha256:
        digests[checksums.S3_ALGORITHM] = out.sha256
    setup.store.record(
        move_id,
        tenant=tenant,
        bucket=bucket,
        source_key=key,
        dest_bucket=dest_bucket,
        dest_key=dest_key,
        storage_class=storage_class,
        size=out.size,
        sha256=out.sha256,
        s3_checksum=out.s3_checksum or "",
        etag=etag,
        checksums=digests,
        status=status,
        run_id=run_id,
        move_fields={
            "sha256": out.sha256,
            "s3_checksum": out.s3_checksum,
            "checksum_algorithm": out.checksum_algorithm,
            "verified_against": out.verified_against,
            "parts": out.parts,
            "messages": out.messages,
        },
        withdraw=kind == mv.TRASH,
    )


def _finish_source(setup: MoveSetup, out: Outcome, bucket: str, key: str, in_place: bool, keep_source: bool, move_id: int) -> None:
    if in_place:
        return
    if not keep_source:
        setup.s3.delete_object(Bucket=bucket, Key=key)
        out.messages.append(f"source {_url(bucket, key)} deleted")
    setup.store.update(move_id, status=mv.DONE, messages=out.messages)


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
    finished = False
    try:
        h = moves.head(setup.s3, obj.bucket, obj.key)
        storage_class = moves.storage_class_of(h) if h is not None else obj.storage_class
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


def __getattr__(name: str) -> Any:
    """The prefix moves (plan, estimate, move) live in move_prefix.py, which builds on this module: found here on first use."""
    if name in _PREFIX_MOVES:
        from glacier_pipelines.flows import move_prefix

        return getattr(move_prefix, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
