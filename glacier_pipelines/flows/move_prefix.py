"""Moves of every object under a prefix (or of one object): plan, cost estimate, and the run that copies each object once.

Part of :mod:`glacier_pipelines.flows.moves` (which re-exports :func:`move`, :func:`plan` and
:func:`estimate`): each object is claimed in the catalog (catalog/claims.py) before it is copied,
so concurrent runs over the same prefix copy each object once and report which run copied it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from glacier_pipelines.catalog import claims as cl
from glacier_pipelines.catalog import moves as mv
from glacier_pipelines.catalog.claims import ClaimStore
from glacier_pipelines.core import lifecycle, moves, pricing
from glacier_pipelines.core.ledger import is_ledger_key
from glacier_pipelines.core.moves import CopySettings, MoveError
from glacier_pipelines.core.objectstore import StoreError
from glacier_pipelines.core.packaging import MANIFEST_SUFFIX
from glacier_pipelines.flows.move_ledger import record as record_ledger
from glacier_pipelines.flows.move_object import move_object
from glacier_pipelines.flows.move_setup import (
    BY_OTHER_RUN,
    DESTINATIONS,
    FAILED,
    IN_OTHER_RUN,
    LEDGER_EVERY,
    SKIPPED,
    MoveReport,
    MoveRequest,
    MoveSetup,
    Outcome,
    allowed_scope,
    days_since,
    destination_for,
    s3_url,
)

log = logging.getLogger(__name__)


def plan(setup: MoveSetup, request: MoveRequest) -> tuple[list[dict[str, Any]], list[Outcome], tuple[str, str]]:
    """The objects a move would copy (key, size, class), the ones it passes over, and the allowed scope; MoveError when refused."""
    try:
        bucket, prefix = lifecycle.parse_s3_url(request.url)
    except ValueError as exc:
        raise MoveError(str(exc)) from None
    scope = allowed_scope(setup, request.tenant, bucket, prefix)
    if prefix + "/" == scope[1]:
        prefix = scope[1]
    target = (request.storage_class or setup.copy.storage_class).upper()
    own = setup.lifecycle.tenant(request.tenant).own_prefix
    listing: list[dict[str, Any]] = []
    single = None
    store = setup.object_store(bucket)
    if prefix and not prefix.endswith("/"):
        single = moves.head(store, prefix)
    if single is not None:
        listing = [{"Key": prefix, "Size": single.size, "StorageClass": single.storage_class}]
    else:
        listing = [
            {"Key": e.key, "Size": e.size, "StorageClass": e.storage_class, "LastModified": e.last_modified} for e in store.list(prefix)
        ]
        if not listing:
            raise MoveError(f"{request.url} does not exist: no object there and none under it")
    todo, passed = [], []
    for item in listing:
        key = item["Key"]
        cls = item.get("StorageClass") or "STANDARD"
        if key.endswith("/") and not item.get("Size"):
            continue  # a "folder" marker, not a file
        if bucket == setup.bucket and key.startswith(own) and (key.endswith(MANIFEST_SUFFIX) or is_ledger_key(key)):
            passed.append(
                Outcome(
                    source=s3_url(bucket, key),
                    destination=s3_url(bucket, key),
                    status=SKIPPED,
                    size=int(item.get("Size", 0)),
                    source_class=cls,
                    storage_class=cls,
                    messages=["package manifests and request ledgers stay in STANDARD: restores and catalog rebuilds read them"],
                )
            )
            continue
        todo.append(
            {"Key": key, "Size": int(item.get("Size", 0)), "StorageClass": cls, "LastModified": item.get("LastModified"), "target": target}
        )
    return todo, passed, scope


def estimate(setup: MoveSetup, todo: list[dict[str, Any]], target: str, verification: str) -> dict[str, Any] | None:
    """The cost of moving ``todo`` into ``target``, per source class, with every line's arithmetic (None without prices)."""
    if setup.pricing is None or not todo:
        return None
    settings = CopySettings(storage_class=target, multipart_threshold=setup.copy.multipart_threshold, part_size=setup.copy.part_size)
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in todo:
        groups.setdefault(item["StorageClass"], []).append(item)
    lines: list[dict[str, Any]] = []
    total = 0.0
    for source_class, items in sorted(groups.items()):
        size = sum(i["Size"] for i in items)
        ages = [d for d in (days_since(i.get("LastModified")) for i in items) if d is not None]
        try:
            est = pricing.estimate_move(
                setup.pricing,
                storage_class=target,
                size_bytes=size,
                objects=len(items),
                copy_requests=sum(moves.copy_requests(i["Size"], settings) for i in items),
                streamed_bytes=size if verification == "stream" else 0,
                source_class=source_class,
                source_days_stored=min(ages) if ages and len(ages) == len(items) else None,
            )
        except pricing.PricingError as exc:
            lines.append({"item": f"{source_class}: no estimate ({exc})", "usd": None})
            continue
        total += est.total
        lines += [{"item": f"from {source_class}: {line.item}", "usd": line.usd} for line in est.lines]
    return {
        "total": round(total, 6),
        "lines": lines,
        "pricing_version": setup.pricing.version,
        "storage_per_month": _monthly(setup.pricing, groups, target),
    }


def _monthly(prices: pricing.Pricing, groups: dict[str, list[dict[str, Any]]], target: str) -> dict[str, float] | None:
    """Storage per month of the objects before and after the move (the saving the move buys)."""
    try:
        before = sum(
            pricing.estimate_archive(prices, storage_class=cls, size_bytes=sum(i["Size"] for i in items), objects=len(items), months=1.0)
            .lines[0]
            .usd
            for cls, items in groups.items()
        )
        items = [i for group in groups.values() for i in group]
        after_est = pricing.estimate_archive(
            prices, storage_class=target, size_bytes=sum(i["Size"] for i in items), objects=len(items), months=1.0
        )
        after = sum(line.usd for line in after_est.lines if "storage at" in line.item or "overhead" in line.item)
    except pricing.PricingError:
        return None
    return {"before_usd": round(before, 6), "after_usd": round(after, 6)}


def move(setup: MoveSetup, request: MoveRequest, *, run_id: str | None = None, progress: Callable[[str], None] | None = None) -> MoveReport:
    """Move one object or every object under a prefix; per-object refusals are reported, a crash is resumed by running again.

    Each object is claimed before it is copied: one another live run holds is left to it, and
    reported as that run's once it is done (this run waits up to ``wait_for_other_runs`` for them).
    """
    target = (request.storage_class or setup.copy.storage_class).upper()
    CopySettings(storage_class=target)  # refuses an unknown class before anything is listed
    if request.destination not in DESTINATIONS:
        raise MoveError(f"destination {request.destination!r} is not one of {', '.join(DESTINATIONS)}")
    if request.verification not in moves.VERIFICATIONS:
        raise MoveError(f"verification {request.verification!r} is not one of {', '.join(moves.VERIFICATIONS)}")
    announced = moves.parse_checksum(request.checksum) if request.checksum else None
    run = run_id or cl.local_run_id()
    started = datetime.now(timezone.utc)
    report = MoveReport(tenant=request.tenant, url=request.url, storage_class=target, verification=request.verification, run_id=run)
    todo, passed, scope = plan(setup, request)
    if announced and len(todo) != 1:
        raise MoveError(f"a checksum can be announced for one object; {request.url} names {len(todo)}")
    report.outcomes += passed
    # Objects already in the target class in place, and already in the catalog as such, need nothing at all.
    pending = []
    for item in todo:
        dest = destination_for(setup, request.tenant, scope[0], item["Key"], scope, request.destination)
        if dest == (scope[0], item["Key"]) and item["StorageClass"] == target:
            obj, _ = setup.store.object_at(*dest)
            if obj is not None and obj.storage_class == target and obj.size == item["Size"]:
                report.outcomes.append(_done_before(setup, scope[0], item, dest, target, run, started))
                continue
        pending.append((item, dest))
    report.left_for_next_run = max(len(pending) - request.max_objects, 0)
    pending = pending[: request.max_objects]
    report.planned = len(pending)
    report.planned_bytes = sum(i["Size"] for i, _ in pending)
    to_copy = [i for i, d in pending if not (d == (scope[0], i["Key"]) and i["StorageClass"] == target)]
    report.estimate = estimate(setup, to_copy, target, request.verification)
    if progress:
        cost = f"${report.estimate['total']:.6f}" if report.estimate else ("nothing" if not to_copy else "unknown (no price list)")
        progress(
            f"move {request.url} -> {target}: {len(to_copy)} object(s), {sum(i['Size'] for i in to_copy):,} bytes to copy; "
            f"estimated cost {cost}"
        )
    if request.dry_run:
        return report
    claims = setup.claims
    held_elsewhere: list[tuple[dict[str, Any], tuple[str, str], str]] = []
    try:
        record_ledger(setup, request.tenant)  # rows an interrupted run left out of the ledger
        for item, dest in pending:
            outcome, holder = _move_claimed(setup, claims, request, scope[0], item, dest, target, announced, run, started)
            if outcome is None:
                held_elsewhere.append((item, dest, holder or ""))
                continue
            report.outcomes.append(outcome)
            if progress and len(report.outcomes) % 100 == 0:
                progress(f"move {request.url}: {dict(Counter(o.status for o in report.outcomes))}")
            if len(report.outcomes) % LEDGER_EVERY == 0:
                record_ledger(setup, request.tenant)
        deadline = time.monotonic() + setup.wait_for_other_runs
        while held_elsewhere:  # objects other live runs held: claimed again once they let go (done, or dead)
            still = []
            for item, dest, holder in held_elsewhere:
                now_holder = claims.holder(cl.MOVE, cl.claim_key(scope[0], item["Key"]), run)  # a read while it is still held
                outcome = None
                if now_holder is None:
                    outcome, now_holder = _move_claimed(setup, claims, request, scope[0], item, dest, target, announced, run, started)
                if outcome is None:
                    still.append((item, dest, now_holder or holder))
                else:
                    report.outcomes.append(outcome)
            held_elsewhere = still
            if not held_elsewhere or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        for item, (dest_bucket, dest_key), holder in held_elsewhere:
            report.outcomes.append(
                Outcome(
                    source=s3_url(scope[0], item["Key"]),
                    destination=s3_url(dest_bucket, dest_key),
                    status=IN_OTHER_RUN,
                    size=item["Size"],
                    source_class=item["StorageClass"],
                    storage_class=target,
                    done_by=holder,
                    messages=[f"being moved by run {holder} (it holds the object's claim): left to it"],
                )
            )
    finally:
        claims.release_all(run, cl.MOVE)  # a run ending by an exception lets the next one take its objects at once
        record_ledger(setup, request.tenant)
    return report


def _done_before(
    setup: MoveSetup, bucket: str, item: dict[str, Any], dest: tuple[str, str], target: str, run: str, started: datetime
) -> Outcome:
    """An object found in the target class and the catalog: copied by another run while this one ran, or skipped."""
    source = s3_url(bucket, item["Key"])
    by_other = _copied_by_other_run(setup, bucket, item["Key"], dest, target, run, started)
    if by_other is not None:
        return by_other
    row = setup.store.get(mv.MOVE, bucket, item["Key"], *dest)
    copied_by = (row or {}).get("copied_by")
    return Outcome(
        source=source,
        destination=s3_url(*dest),
        status=SKIPPED,
        size=item["Size"],
        source_class=target,
        storage_class=target,
        done_by=copied_by,
        messages=[f"already in {target} and in the catalog"] + ([f"copied by run {copied_by}"] if copied_by else []),
    )


def _copied_by_other_run(
    setup: MoveSetup, bucket: str, key: str, dest: tuple[str, str], target: str, run: str, started: datetime
) -> Outcome | None:
    """The outcome "copied by run X" when another run finished this move after this run started; None otherwise."""
    row = setup.store.get(mv.MOVE, bucket, key, *dest)
    if row is None or row["status"] != mv.DONE or row["storage_class"] != target or row["copied_by"] in (None, run):
        return None
    updated = row["updated_at"] if row["updated_at"].tzinfo else row["updated_at"].replace(tzinfo=timezone.utc)
    if updated < started:
        return None  # done before this run began: a rerun passes over it (SKIPPED)
    return Outcome(
        source=s3_url(bucket, key),
        destination=s3_url(*dest),
        status=BY_OTHER_RUN,
        size=int(row["size"] or 0),
        source_class=row["source_class"] or "",
        storage_class=target,
        s3_checksum=row["s3_checksum"],
        checksum_algorithm=row["checksum_algorithm"],
        sha256=row["sha256"],
        verified_against=list(row["verified_against"] or []),
        parts=int(row["parts"] or 0),
        done_by=row["copied_by"],
        messages=[f"copied by run {row['copied_by']}"],
    )


def _move_claimed(
    setup: MoveSetup,
    claims: ClaimStore,
    request: MoveRequest,
    bucket: str,
    item: dict[str, Any],
    dest: tuple[str, str],
    target: str,
    announced: tuple[str, str] | None,
    run: str,
    started: datetime,
) -> tuple[Outcome | None, str | None]:
    """Claim one object and move it: (its outcome, None), or (None, the run holding it) when another live run does."""
    source = s3_url(bucket, item["Key"])
    dest_bucket, dest_key = dest
    key = cl.claim_key(bucket, item["Key"])
    claim = claims.claim(cl.MOVE, key, run, subject=source)
    if not claim.won:
        return None, claim.holder
    if claim.taken_from:
        log.warning("move %s: run %s held it but is over; run %s takes it over", source, claim.taken_from, run)
    finished = False
    try:
        outcome = _copied_by_other_run(setup, bucket, item["Key"], dest, target, run, started) or move_object(
            setup,
            tenant=request.tenant,
            bucket=bucket,
            key=item["Key"],
            dest_bucket=dest_bucket,
            dest_key=dest_key,
            storage_class=target,
            verification=request.verification,
            announced=announced,
            run_id=run,
            heartbeat=lambda: claims.heartbeat(cl.MOVE, key, run),
        )
        finished = True
    except MoveError as exc:
        outcome = Outcome(
            source=source,
            destination=s3_url(dest_bucket, dest_key),
            status=FAILED,
            size=item["Size"],
            source_class=item["StorageClass"],
            storage_class=target,
            messages=[str(exc)],
        )
    except StoreError as exc:
        if exc.status is None:  # S3 did not answer (unreachable, timed out): the run stops, as it always has
            raise
        if exc.code in ("PreconditionFailed", "412"):
            reason = f"{source} changed while it was being moved (its ETag no longer matches): run the move again"
        else:
            reason = f"S3 refused: {exc.code}: {exc.message or exc.__cause__ or exc}"
        outcome = Outcome(
            source=source,
            destination=s3_url(dest_bucket, dest_key),
            status=FAILED,
            size=item["Size"],
            source_class=item["StorageClass"],
            storage_class=target,
            messages=[reason],
        )
    finally:
        (claims.done if finished else claims.release)(cl.MOVE, key, run)
    if outcome.status == FAILED:
        log.warning("move %s: %s", source, "; ".join(outcome.messages))
    return outcome, None
