"""Step 2: archive-retrieval jobs, oldest archives first, paced by the daily byte quota and the jobs per run."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from glacier_pipelines.catalog import claims as cl
from glacier_pipelines.catalog import vault_tables as v
from glacier_pipelines.catalog.vault_rows import ArchiveRow
from glacier_pipelines.core.objectstore import NotFound, ObjectHead
from glacier_pipelines.flows.vault.jobs import JobChanges, refresh_jobs
from glacier_pipelines.flows.vault.setup import S3_MAX_OBJECT_BYTES, VaultSetup, _code, _mib, check_vault_name, hold_archive

log = logging.getLogger(__name__)


@dataclass
class RetrievalReport:
    vault: str
    jobs: JobChanges = field(default_factory=JobChanges)
    started: list[tuple[str, int]] = field(default_factory=list)  # (archive id, bytes)
    reinitiated: list[tuple[str, str, str]] = field(default_factory=list)  # (archive id, old job, new job)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (archive id, reason)
    failed: list[tuple[str, str]] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)  # 0-byte archives: no job needed
    quota_used: int = 0  # bytes of jobs started in the last 24 h, after this step
    quota_limited: bool = False  # stopped because the next archive does not fit in the daily quota
    rate_limited: bool = False  # stopped because max_jobs were started
    stopped: str | None = None  # why initiating stopped early (Glacier refused), if it did
    left_to_others: list[tuple[str, str]] = field(default_factory=list)  # (archive id, run) another live run holds

    @property
    def bytes_started(self) -> int:
        return sum(size for _, size in self.started)


def _head(setup: VaultSetup, key: str) -> ObjectHead | None:
    try:
        return setup.objects().head(key)
    except NotFound:
        return None


def _already_there(setup: VaultSetup, row: ArchiveRow) -> tuple[bool, str | None]:
    """(True, None) if the destination holds this archive, (False, reason) if it holds something else, (False, None) if empty."""
    head = _head(setup, row.destination_key)
    if head is None:
        return False, None
    size = head.size
    their_hash = head.metadata.get("glacier-tree-hash")
    if size != row.size:
        return False, f"s3://{setup.bucket}/{row.destination_key} already exists with {size} bytes, not {row.size}: not overwritten"
    if their_hash and their_hash != row.tree_hash:
        return False, f"s3://{setup.bucket}/{row.destination_key} already holds another archive (tree hash {their_hash}): not overwritten"
    return True, None


def _start_job(setup: "VaultSetup", row: Any, vault: str, report: Any, run_id: str) -> str | None:
    """Initiate one retrieval job; None when the archive failed (recorded) or Glacier refuses more jobs (``report.stopped``)."""
    try:
        return _initiate(setup, row)
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            _fail(setup, row, f"archive not found in vault {vault} (deleted since the inventory?)", report.failed, run_id)
            return None
        if _code(exc) in _STOP_CODES:
            report.stopped = f"Glacier refused a new job: {_code(exc)}: {exc}"
            return None
        raise


def _initiate(setup: VaultSetup, row: ArchiveRow) -> str:
    params = {
        "Type": "archive-retrieval",
        "ArchiveId": row.archive_id,
        "Tier": setup.tier,
        "Description": f"glacier-pipelines copy to s3://{setup.bucket}"[:1024],
    }
    return setup.glacier.initiate_job(accountId=setup.account_id, vaultName=row.vault, jobParameters=params)["jobId"]


_STOP_CODES = ("PolicyEnforcedException", "InsufficientCapacityException", "ThrottlingException", "LimitExceededException")


def request_retrievals(setup: VaultSetup, vault: str, *, run_id: str | None = None) -> RetrievalReport:
    """Start archive-retrieval jobs, oldest archives first, within the daily byte quota and ``max_jobs`` per run.

    Also re-requests the output of jobs that completed longer than ``expiry_margin`` ago while
    their archive is not copied yet, skips archives S3 cannot hold as one object, marks DONE
    archives whose destination already holds them (HEAD, same size), and needs no job for
    0-byte archives. Each archive is claimed before its job starts: one another live run holds
    is left to it, one another run moved on meanwhile is passed over.
    """
    check_vault_name(setup, vault)
    run = run_id or cl.local_run_id()
    store, claims = setup.store, setup.claims
    report = RetrievalReport(vault)
    report.jobs = refresh_jobs(setup, vault=vault, kind=v.ARCHIVE)
    now = setup.clock()
    pace = _Pace(setup, store.quota_used(now - timedelta(hours=24)))

    # Outputs about to expire first: their archives are the furthest along.
    cutoff = now - setup.expiry_margin
    for row in store.archives(vault, [v.STAGED, v.TRANSFERRING]):
        if row.job_id is None or row.job_completed_at is None or row.job_completed_at > cutoff:
            continue
        if not pace.allows(row.size, report):
            break
        with hold_archive(setup, claims, row, run, report.left_to_others) as fresh:
            if fresh is None or (fresh.status, fresh.job_id) != (row.status, row.job_id):
                continue
            job_id = _start_job(setup, fresh, vault, report, run)
            if job_id is None:
                if report.stopped:
                    break
                continue
            hours = (now - row.job_completed_at).total_seconds() / 3600
            store.start_job(
                fresh,
                job_id=job_id,
                tier=setup.tier,
                at=now,
                run_id=run,
                message=f"output of job {row.job_id} completed {hours:.1f} h ago and was not copied yet; requested again as job {job_id}",
            )
            report.reinitiated.append((row.archive_id, row.job_id, job_id))
            pace.took(row.size)

    # Then new archives, oldest first. Every archive handled below leaves NEW, so each batch is read from the top
    # (but for archives passed over: another run holds them, or moved them on).
    passed: set[int] = set()
    while not (report.rate_limited or report.quota_limited or report.stopped):
        rows = [r for r in store.archives(vault, [v.NEW], limit=500 + len(passed)) if r.pk not in passed]
        if not rows:
            break
        for row in rows:
            with hold_archive(setup, claims, row, run, report.left_to_others) as fresh:
                if fresh is None or fresh.status != v.NEW:
                    passed.add(row.pk)
                    continue
                if not _new_archive(setup, fresh, report, run, now, pace):
                    break
    report.quota_used = pace.used
    log.info(
        "vault %s: %d job(s) started (%s), %d re-requested, %d skipped, %d already in S3, %d left to other runs",
        vault,
        len(report.started),
        _mib(report.bytes_started),
        len(report.reinitiated),
        len(report.skipped),
        len(report.already_present),
        len(report.left_to_others),
    )
    return report


@dataclass
class _Pace:
    """The daily byte quota and the jobs per run, as this step uses them up."""

    setup: VaultSetup
    used: int  # bytes of jobs started in the last 24 h
    started: int = 0

    def allows(self, size: int, report: RetrievalReport) -> bool:
        if self.started >= self.setup.max_jobs:
            report.rate_limited = True
            return False
        # An archive larger than the whole quota starts alone, when nothing else was started in 24 h.
        if self.setup.daily_bytes and self.used + size > self.setup.daily_bytes and self.used != 0:
            report.quota_limited = True
            return False
        return True

    def took(self, size: int) -> None:
        self.used += size
        self.started += 1


def _new_archive(setup: VaultSetup, row: ArchiveRow, report: RetrievalReport, run: str, now: Any, pace: _Pace) -> bool:
    """Move one claimed NEW archive on (skipped, empty, already in S3, failed, or its job started); False: stop starting jobs."""
    store = setup.store
    if row.size > S3_MAX_OBJECT_BYTES:
        reason = (
            f"{row.size:,} bytes is more than S3's largest single object ({S3_MAX_OBJECT_BYTES:,} bytes): "
            "skipped; retrieve it in byte ranges and store it as several objects by hand"
        )
        store.finish(row.pk, v.SKIPPED, message=reason, at=now, run_id=run)
        report.skipped.append((row.archive_id, reason))
        return True
    if row.size == 0:
        store.update_archive(row.pk, status=v.STAGED, message="empty archive: no retrieval job needed", run_id=run)
        report.empty.append(row.archive_id)
        return True
    if not pace.allows(row.size, report):
        return False
    present, conflict = _already_there(setup, row)
    if present:
        store.finish(
            row.pk,
            v.DONE,
            message=f"s3://{setup.bucket}/{row.destination_key} already exists with the expected size: not retrieved again",
            at=now,
            run_id=run,
            bucket=setup.bucket,
        )
        report.already_present.append(row.archive_id)
        return True
    if conflict:
        _fail(setup, row, conflict, report.failed, run)
        return True
    job_id = _start_job(setup, row, row.vault, report, run)
    if job_id is None:
        return not report.stopped
    store.start_job(row, job_id=job_id, tier=setup.tier, at=now, run_id=run, message=None)
    report.started.append((row.archive_id, row.size))
    pace.took(row.size)
    return True


def _fail(setup: VaultSetup, row: ArchiveRow, reason: str, into: list[tuple[str, str]], run_id: str | None) -> None:
    if row.upload_id:
        setup.abort_upload(row.destination_key, row.upload_id)
    setup.store.finish(row.pk, v.FAILED, message=reason, at=setup.clock(), run_id=run_id)
    into.append((row.archive_id, reason))
