"""Step 3: archives copied from their job output into S3, one tree-hash aligned range per part, verified before completion."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from glacier_pipelines.catalog import claims as cl
from glacier_pipelines.catalog import vault_tables as v
from glacier_pipelines.catalog.claims import ClaimStore
from glacier_pipelines.catalog.vault_rows import ArchiveRow, PartRow
from glacier_pipelines.core import checksums, treehash
from glacier_pipelines.core.objectstore import NotFound, Part, StoreError, Upload
from glacier_pipelines.flows.store_faults import said
from glacier_pipelines.flows.vault.jobs import JobChanges, refresh_jobs
from glacier_pipelines.flows.vault.retrievals import _already_there, _head
from glacier_pipelines.flows.vault.setup import (
    EMPTY_TREE_HASH,
    MAX_TRANSFER_ATTEMPTS,
    S3_MAX_PARTS,
    MiB,
    VaultSetup,
    _code,
    _mib,
    check_vault_name,
    hold_archive,
)

log = logging.getLogger(__name__)


class IntegrityError(Exception):
    """The bytes are not the archive's: a chunk or the whole archive does not have the expected tree hash."""


class JobGone(Exception):
    """The job output cannot be read any more (expired or failed): the archive needs a new job."""


@dataclass
class TransferReport:
    vault: str
    jobs: JobChanges = field(default_factory=JobChanges)
    considered: int = 0
    done: list[tuple[str, int]] = field(default_factory=list)  # (archive id, bytes) copied by this step
    already_present: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    interrupted: list[tuple[str, str]] = field(default_factory=list)  # left open, resumed by the next run
    requeued: list[tuple[str, str]] = field(default_factory=list)  # job output gone: back to NEW
    bytes_transferred: int = 0  # bytes uploaded by this step (parts and empty objects)
    parts_uploaded: int = 0
    seconds: float = 0.0
    by_other_runs: list[tuple[str, str]] = field(default_factory=list)  # (archive id, run) copied by another run meanwhile
    left_to_others: list[tuple[str, str]] = field(default_factory=list)  # (archive id, run) another live run was copying

    def merge(self, other: "TransferReport") -> None:
        for name in ("done", "already_present", "failed", "interrupted", "requeued", "by_other_runs", "left_to_others"):
            getattr(self, name).extend(getattr(other, name))
        self.bytes_transferred += other.bytes_transferred
        self.parts_uploaded += other.parts_uploaded


def chunk_size_for(size: int, configured: int) -> int:
    """The tree-hash aligned range (and part) size for an archive: configured, grown to stay within 10,000 parts."""
    needed = MiB
    while needed * S3_MAX_PARTS < size:
        needed *= 2
    return treehash.aligned_chunk_size(size, max(configured, needed))


def _object_metadata(row: ArchiveRow) -> dict[str, str]:
    return {
        "glacier-vault": row.vault,
        "glacier-archive-id": row.archive_id,
        "glacier-tree-hash": row.tree_hash,
        "glacier-creation-date": row.creation_date.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _glacier_range(setup: VaultSetup, row: ArchiveRow, start: int, end: int) -> tuple[bytes, str | None]:
    try:
        resp = setup.glacier.get_job_output(accountId=setup.account_id, vaultName=row.vault, jobId=row.job_id, range=f"bytes={start}-{end}")
    except ClientError as exc:
        if _code(exc) in ("ResourceNotFoundException", "InvalidParameterValueException"):
            raise JobGone(f"job {row.job_id}: {_code(exc)}: {exc.response.get('Error', {}).get('Message', '')}") from exc
        raise
    data = resp["body"].read()
    if len(data) != end - start + 1:
        raise OSError(f"bytes {start}-{end}: Glacier sent {len(data)} bytes, expected {end - start + 1}")
    return data, resp.get("checksum")


def _list_parts(setup: VaultSetup, key: str, upload_id: str) -> dict[int, str] | None:
    """part number -> ETag of an open upload, None if the upload no longer exists."""
    try:
        return {p.number: p.etag for p in setup.objects().parts(Upload(key=key, upload_id=upload_id, checksum_algorithm=None))}
    except StoreError as exc:
        if exc.code in ("NoSuchUpload", "404"):
            return None
        raise


def _transfer_one(
    setup: VaultSetup, row: ArchiveRow, report: TransferReport, run_id: str | None, heartbeat: Callable[[], Any] | None = None
) -> None:
    store, objects, upload = setup.store, setup.objects(), setup.upload
    key = row.destination_key
    if row.size == 0:
        if row.tree_hash != EMPTY_TREE_HASH:
            raise IntegrityError(f"the inventory lists 0 bytes with tree hash {row.tree_hash}, not the empty input's {EMPTY_TREE_HASH}")
        present, conflict = _already_there(setup, row)
        if conflict:
            raise IntegrityError(conflict)
        if not present:
            objects.put(
                key,
                b"",
                storage_class=upload.storage_class,
                metadata=_object_metadata(row),
                sse=upload.sse,
                kms_key_id=upload.kms_key_id,
                checksum_algorithm="SHA256",
                checksum=checksums.b64(hashlib.sha256(b"").digest()),
            )
        store.finish(
            row.pk,
            v.DONE,
            message=f"empty archive stored as s3://{setup.bucket}/{key}",
            at=setup.clock(),
            run_id=run_id,
            bucket=setup.bucket,
        )
        report.done.append((row.archive_id, 0))
        return

    upload_id, chunk = row.upload_id, row.chunk_size
    done_parts: dict[int, PartRow] = {}
    if upload_id:
        listed = _list_parts(setup, key, upload_id)
        if listed is None:
            store.update_archive(row.pk, upload_id=None, message=f"multipart upload {upload_id} is gone; starting over")
            store.clear_parts(row.pk)
            upload_id = None
        else:
            recorded = store.parts(row.pk, upload_id)
            done_parts = {n: p for n, p in recorded.items() if listed.get(n) == p.etag.strip('"')}
    if not upload_id:
        present, conflict = _already_there(setup, row)
        if present:
            store.finish(
                row.pk,
                v.DONE,
                message=f"s3://{setup.bucket}/{key} already exists with the expected size: not transferred again",
                at=setup.clock(),
                run_id=run_id,
                bucket=setup.bucket,
            )
            report.already_present.append(row.archive_id)
            return
        if conflict:
            raise IntegrityError(conflict)
        chunk = chunk_size_for(row.size, setup.chunk_size)
        upload_id = objects.begin(
            key,
            storage_class=upload.storage_class,
            metadata=_object_metadata(row),
            sse=upload.sse,
            kms_key_id=upload.kms_key_id,
            checksum_algorithm="SHA256",
        ).upload_id
        store.start_upload(row.pk, upload_id, chunk, setup.bucket)
    elif row.status != v.TRANSFERRING:
        store.update_archive(row.pk, status=v.TRANSFERRING)
    assert chunk is not None

    opened = Upload(key=key, upload_id=upload_id, checksum_algorithm="SHA256")
    ranges = treehash.aligned_ranges(row.size, chunk)
    roots: dict[int, str] = {n: p.tree_hash for n, p in done_parts.items()}
    parts: dict[int, Part] = {n: Part(number=n, etag=p.etag, checksum=p.checksum_sha256) for n, p in done_parts.items()}
    unannounced = 0  # ranges Glacier sent without x-amz-sha256-tree-hash
    for k, (start, end) in enumerate(ranges):
        number = k + 1
        if number in done_parts:
            continue
        data, announced = _glacier_range(setup, row, start, end)
        actual = treehash.tree_hash(data)
        if not announced:  # nothing to check this range against: the whole archive's tree hash (below) still is
            unannounced += 1
        elif actual != announced.lower():
            raise IntegrityError(
                f"part {number} (bytes {start}-{end}): tree hash of the bytes received is {actual}, Glacier announced {announced}"
            )
        digest = checksums.b64(hashlib.sha256(data).digest())
        sent = objects.upload_part(opened, number, data, checksum=digest)
        if sent.checksum is not None and sent.checksum != digest:
            raise IntegrityError(f"part {number}: S3 reports checksum {sent.checksum}, sent {digest}")
        store.record_part(row.pk, upload_id, number, etag=sent.etag, checksum_sha256=digest, tree_hash=actual, size=len(data))
        parts[number] = Part(number=number, etag=sent.etag, checksum=digest)
        roots[number] = actual
        report.bytes_transferred += len(data)
        report.parts_uploaded += 1
        if heartbeat is not None:
            heartbeat()  # the claim stays this run's while a large archive is copied
        del data

    whole = treehash.combine_ranges([bytes.fromhex(roots[n]) for n in range(1, len(ranges) + 1)], chunk).hex()
    if whole != row.tree_hash:
        unsent = f" ({unannounced} range(s) came without x-amz-sha256-tree-hash)" if unannounced else ""
        raise IntegrityError(f"tree hash of the {len(ranges)} part(s) is {whole}, the inventory says {row.tree_hash}{unsent}")
    completed = objects.complete(opened, [parts[n] for n in range(1, len(ranges) + 1)])
    head = _head(setup, key)
    if head is None or head.size != row.size:
        raise OSError(
            f"s3://{setup.bucket}/{key} reports {None if head is None else head.size} bytes after completion, expected {row.size}"
        )
    store.finish(
        row.pk,
        v.DONE,
        message=f"copied to s3://{setup.bucket}/{key} in {len(ranges)} part(s), tree hash verified"
        + (
            f" ({unannounced} range(s) without x-amz-sha256-tree-hash: verified by the inventory's whole-archive tree hash)"
            if unannounced
            else ""
        ),
        at=setup.clock(),
        run_id=run_id,
        bucket=setup.bucket,
        etag=completed.etag,
        s3_checksum=completed.checksums.get("SHA256") or head.checksums.get("SHA256"),
    )
    report.done.append((row.archive_id, row.size))


def _transfer_claimed(setup: VaultSetup, claims: ClaimStore, row: ArchiveRow, report: TransferReport, run: str) -> None:
    """Claim the archive, then copy it unless another run did meanwhile (or holds it now)."""
    key = cl.claim_key(row.vault, row.archive_id)
    with hold_archive(setup, claims, row, run, report.left_to_others) as fresh:
        if fresh is None:
            return
        if fresh.status not in (v.STAGED, v.TRANSFERRING):
            if fresh.status == v.DONE and fresh.run_id not in (None, run):
                report.by_other_runs.append((row.archive_id, fresh.run_id))
            return
        _transfer_guarded(setup, fresh, report, run, heartbeat=lambda: claims.heartbeat(cl.VAULT_ARCHIVE, key, run))


def _transfer_guarded(
    setup: VaultSetup, row: ArchiveRow, report: TransferReport, run_id: str | None, heartbeat: Callable[[], Any] | None = None
) -> None:
    store = setup.store
    try:
        _transfer_one(setup, row, report, run_id, heartbeat)
    except IntegrityError as exc:
        fresh = store.archive(row.pk)
        if fresh.upload_id:
            setup.abort_upload(fresh.destination_key, fresh.upload_id)
        store.finish(row.pk, v.FAILED, message=str(exc), at=setup.clock(), run_id=run_id)
        report.failed.append((row.archive_id, str(exc)))
        log.warning("vault %s: archive %s FAILED: %s", row.vault, row.archive_id, exc)
    except JobGone as exc:
        if row.job_id:
            store.update_job(row.job_id, status=v.EXPIRED, checked_at=setup.clock(), message=str(exc))
        store.update_archive(row.pk, status=v.NEW, message=f"{exc}; a new retrieval job will be started (parts already uploaded are kept)")
        report.requeued.append((row.archive_id, str(exc)))
    except (StoreError, ClientError, BotoCoreError, OSError) as exc:  # ClientError, BotoCoreError: the Glacier API's (not the port's)
        fresh = store.archive(row.pk)
        attempts = fresh.attempts + 1
        if attempts >= MAX_TRANSFER_ATTEMPTS:
            if fresh.upload_id:
                setup.abort_upload(fresh.destination_key, fresh.upload_id)
            reason = f"gave up after {attempts} interrupted attempts; last error: {said(exc)}"
            store.finish(row.pk, v.FAILED, message=reason, at=setup.clock(), run_id=run_id, attempts=attempts)
            report.failed.append((row.archive_id, reason))
        else:
            store.update_archive(
                row.pk,
                attempts=attempts,
                message=f"transfer interrupted (attempt {attempts}): {said(exc)}; the next run resumes from the first missing part",
            )
            report.interrupted.append((row.archive_id, said(exc)))
        log.warning("vault %s: archive %s interrupted: %s", row.vault, row.archive_id, said(exc))


def transfer_archives(setup: VaultSetup, vault: str, *, run_id: str | None = None) -> TransferReport:
    """Copy every archive whose job output is ready (at most ``max_archives_per_run``), then record a progress snapshot.

    An archive whose bytes fail verification is aborted and FAILED alone; one interrupted by
    an S3 or network error keeps its open upload and recorded parts for the next run. Each
    archive is claimed first: one another live run is copying is left to it, one another run
    copied meanwhile is reported as that run's (``by_other_runs``).
    """
    check_vault_name(setup, vault)
    run = run_id or cl.local_run_id()
    store, claims = setup.store, setup.claims
    started = time.monotonic()
    report = TransferReport(vault)
    report.jobs = refresh_jobs(setup, vault=vault, kind=v.ARCHIVE)
    rows = store.archives(vault, [v.STAGED, v.TRANSFERRING], limit=setup.max_archives_per_run)
    report.considered = len(rows)
    if setup.concurrency == 1 or len(rows) < 2:
        for row in rows:
            _transfer_claimed(setup, claims, row, report, run)
    else:  # one report per archive (threads), merged afterwards
        sub_reports = [TransferReport(vault) for _ in rows]
        with ThreadPoolExecutor(max_workers=setup.concurrency, thread_name_prefix="vault") as pool:
            list(pool.map(lambda pair: _transfer_claimed(setup, claims, pair[0], pair[1], run), zip(rows, sub_reports)))
        for sub in sub_reports:
            report.merge(sub)
    report.seconds = time.monotonic() - started
    store.record_progress(vault, run_id=run, at=setup.clock(), bytes_transferred=report.bytes_transferred)
    log.info(
        "vault %s: %d archive(s) copied by run %s, %s uploaded in %.1f s, %d failed, %d interrupted, %d copied by other runs, "
        "%d left to other runs",
        vault,
        len(report.done),
        run,
        _mib(report.bytes_transferred),
        report.seconds,
        len(report.failed),
        len(report.interrupted),
        len(report.by_other_runs),
        len(report.left_to_others),
    )
    return report


def verify_transfers(setup: VaultSetup, vault: str, *, run_id: str | None) -> list[tuple[str, str, str]]:
    """Re-read what S3 holds for each archive this run copied (DONE with this ``run_id``); (archive id, key, fault) per mismatch.

    HEAD with ChecksumMode ENABLED: the size must be the inventory's, the SHA-256 checksum S3 reports the one
    recorded at copy time, and the ``glacier-tree-hash`` metadata the inventory's tree hash. A mismatching
    archive becomes FAILED in the catalog (never offered as done), with the fault as its message.
    """
    store = setup.store
    faults: list[tuple[str, str, str]] = []
    for row in store.archives(vault, [v.DONE]):
        if run_id is not None and store.archive_run_id(row.pk) != run_id:
            continue
        key, bucket = row.destination_key, row.bucket or setup.bucket
        try:
            head = setup.objects(bucket).head(key, checksum=True)
        except NotFound:
            head = None
        if head is None:
            fault = f"s3://{bucket}/{key} is missing"
        elif head.size != row.size:
            fault = f"s3://{bucket}/{key} holds {head.size} bytes, the inventory says {row.size}"
        elif row.s3_checksum and head.checksums.get("SHA256") != row.s3_checksum:
            fault = (
                f"s3://{bucket}/{key} reports SHA-256 checksum {head.checksums.get('SHA256')}, {row.s3_checksum} was recorded at copy time"
            )
        elif row.etag and head.etag != row.etag:
            fault = f"s3://{bucket}/{key} has ETag {head.etag}, {row.etag} was recorded at copy time"
        elif row.etag and head.metadata.get("glacier-tree-hash") != row.tree_hash:
            fault = f"s3://{bucket}/{key} carries tree hash {head.metadata.get('glacier-tree-hash')}, the inventory says {row.tree_hash}"
        else:
            continue
        store.finish(row.pk, v.FAILED, message=f"integrity check: {fault}", at=setup.clock(), run_id=run_id)
        faults.append((row.archive_id, key, fault))
    return faults
