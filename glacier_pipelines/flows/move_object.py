"""One object's move (``move_object``): what moves.trash and move_prefix.move do for each object; see flows/moves.py.

Every S3 call goes through the storage port: the source bucket's ObjectStore and the
destination's (``MoveSetup.object_store``), one HEAD each, then core/moves.py's server-side copy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from glacier_pipelines.catalog import moves as mv
from glacier_pipelines.core import checksums, moves
from glacier_pipelines.core.moves import ChecksumMismatch, CopySettings, MoveError, Reference
from glacier_pipelines.core.objectstore import ObjectHead
from glacier_pipelines.flows.move_setup import MOVED, SKIPPED, MoveSetup, Outcome, s3_url


def _same_etag(recorded: str | None, etag: str) -> bool:
    """An ETag the catalog recorded (quoted, as S3 answers it) against one the port reports (unquoted)."""
    return (recorded or "").strip('"') == etag


def _references(setup: MoveSetup, bucket: str, key: str, h: ObjectHead, announced: tuple[str, str] | None) -> tuple[list[Reference], Any]:
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
    """Move one object by a server-side copy, verify it as asked and record it; raises MoveError (and StoreError) on refusal.

    The caller holds the object's claim (``heartbeat`` refreshes it during a multipart copy).
    """
    if verification not in moves.VERIFICATIONS:
        raise MoveError(f"verification {verification!r} is not one of {', '.join(moves.VERIFICATIONS)}")
    store = setup.store
    source_url, dest_url = s3_url(bucket, key), s3_url(dest_bucket, dest_key)
    in_place = (bucket, key) == (dest_bucket, dest_key)
    out = Outcome(source=source_url, destination=dest_url, status=MOVED, storage_class=storage_class)
    row = store.get(kind, bucket, key, dest_bucket, dest_key, request_id)
    source, dest = setup.object_store(bucket), setup.object_store(dest_bucket)
    h = moves.head(source, key)
    dest_h = h if in_place else moves.head(dest, dest_key)
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
            out.status, out.size = SKIPPED, dest_h.size
            out.messages.append(f"already moved to {dest_url}")
            if row["status"] == mv.COPIED:
                store.update(row["id"], status=mv.DONE, messages=list(row["messages"] or []) + ["source deleted"])
            return out
        raise MoveError(f"{source_url} does not exist (nothing to move)")
    out.size, out.source_class = h.size, h.storage_class
    source_etag = f'"{h.etag}"'  # as S3 answers it (quoted): the catalog's rows and the ledger keep that form

    # Already where it should be: no copy, just the record (a rerun after a crash lands here).
    adopted = False
    if dest_h is not None and dest_h.storage_class == storage_class:
        if in_place:
            adopted = True
        else:
            sha = dest_h.checksums.get("SHA256")
            same = dest_h.size == out.size and (
                (row is not None and row["status"] in (mv.COPYING, mv.COPIED) and _same_etag(row["source_etag"], h.etag))
                or bool(sha and sha == h.checksums.get("SHA256"))
            )
            if not same:
                raise MoveError(f"{dest_url} already exists and does not hold a copy of {source_url}: not overwritten")
            adopted = True
    elif dest_h is not None and not in_place:
        raise MoveError(f"{dest_url} already exists (in {dest_h.storage_class}): not overwritten")

    references, _ = _references(setup, bucket, key, h, announced)
    what = f"{source_url}"
    if adopted and row is not None and row["status"] == mv.FAILED and _same_etag(row["source_etag"], h.etag):
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
        # Multipart objects this project archived carry a CRC32 composite; moved or single-PUT ones SHA-256.
        s3_sum = held.checksums.get("SHA256") or held.checksums.get("CRC32") or (row or {}).get("s3_checksum") or ""
        composite = held.checksum_type == "COMPOSITE" or moves.is_multipart(held)
        sha = (row or {}).get("sha256") or (None if composite else moves.b64_to_hex(held.checksums.get("SHA256")))
        catalog_sha = next((r.hex for r in references if r.source == "catalog" and r.algorithm == checksums.S3_ALGORITHM), None)
        if sha and catalog_sha and sha != catalog_sha:
            raise ChecksumMismatch(f"{what}: S3 holds SHA-256 {sha}, the catalog has {catalog_sha}")
        sha = sha or catalog_sha
        out.s3_checksum, out.sha256 = s3_sum, sha
        out.checksum_algorithm = (row or {}).get("checksum_algorithm") or f"SHA256 ({'COMPOSITE' if composite else 'FULL_OBJECT'})"
        out.verified_against = list((row or {}).get("verified_against") or [])
        move_id = (row or {}).get("id") or store.begin(
            **base, status=mv.COPYING, source_etag=source_etag, source_class=out.source_class, size=out.size, messages=[]
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
            etag=held.etag,
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
            streamed = moves.stream(source, key, etag=h.etag, algorithms={r.algorithm for r in references}, ranges=ranges)
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
            **base, status=mv.FAILED, source_etag=source_etag, source_class=out.source_class, size=out.size, messages=[str(exc)]
        )
        raise

    move_id = store.begin(
        **base,
        status=mv.COPYING,
        source_etag=source_etag,
        source_class=out.source_class,
        size=out.size,
        sha256=streamed.digests[checksums.S3_ALGORITHM] if streamed else None,
        verified_against=[r.as_dict() for r in verified],
        messages=list(out.messages),
    )
    # CopyObject copies tags itself; CreateMultipartUpload must be given them.
    tags = source.tags(key) if ranges else None
    copy = moves.server_side_copy(source, key, dest, dest_key, source_head=h, settings=settings, tags=tags, on_part=heartbeat)
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
        setup.object_store(bucket).delete(key)
        out.messages.append(f"source {s3_url(bucket, key)} deleted")
    setup.store.update(move_id, status=mv.DONE, messages=out.messages)
