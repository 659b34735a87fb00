"""Polling Glacier's jobs: what each DescribeJob answer means for the job's archive."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from glacier_pipelines.catalog import vault_tables as v
from glacier_pipelines.catalog.vault_rows import JobRow
from glacier_pipelines.flows.vault.setup import MAX_JOB_FAILURES, VaultSetup, _code, _parse_date


@dataclass
class JobChanges:
    checked: int = 0
    succeeded: list[str] = field(default_factory=list)  # job ids
    failed: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    vaults: set[str] = field(default_factory=set)  # vaults where something changed
    error: str | None = None  # polling stopped early on this (throttling, network): the rest waits for the next call


def refresh_jobs(
    setup: VaultSetup, *, vault: str | None = None, kind: str | None = None, limit: int | None = None, max_seconds: float | None = None
) -> JobChanges:
    """DescribeJob for pending jobs (least recently checked first, at most ``limit``) and record what changed.

    A Succeeded archive job makes its archive STAGED; a Failed one sends the archive back to NEW
    (FAILED after MAX_JOB_FAILURES); a job Glacier no longer knows (404) is Expired and its
    archive goes back to NEW too.
    """
    store = setup.store
    changes = JobChanges()
    started = time.monotonic()
    for job in store.pending_jobs(vault=vault, kind=kind, limit=setup.max_describe if limit is None else limit):
        if max_seconds is not None and time.monotonic() - started > max_seconds:
            break
        now = setup.clock()
        changes.checked += 1
        try:
            desc = setup.glacier.describe_job(accountId=setup.account_id, vaultName=job.vault, jobId=job.job_id)
        except BotoCoreError as exc:
            changes.error = f"DescribeJob {job.job_id}: {exc}"
            break
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500 or "Throttl" in _code(exc):
                    changes.error = f"DescribeJob {job.job_id}: {_code(exc)}: {exc}"
                    break
                raise
            store.update_job(job.job_id, status=v.EXPIRED, checked_at=now, message="Glacier no longer knows this job (expired)")
            _job_gone(setup, job, "its output expired before it was copied; it will be requested again", failed=False)
            changes.expired.append(job.job_id)
            changes.vaults.add(job.vault)
            continue
        status = desc.get("StatusCode")
        if status == v.IN_PROGRESS:
            store.update_job(job.job_id, checked_at=now)
            continue
        completed = _parse_date(desc.get("CompletionDate")) or now
        store.update_job(job.job_id, status=status, completed_at=completed, checked_at=now, message=desc.get("StatusMessage"))
        changes.vaults.add(job.vault)
        if status == v.SUCCEEDED:
            changes.succeeded.append(job.job_id)
            if job.kind == v.ARCHIVE:
                row = store.archive_for_job(job.job_id)
                if row is not None and row.status == v.REQUESTED:
                    store.update_archive(row.pk, status=v.STAGED, job_completed_at=completed)
        else:
            changes.failed.append(job.job_id)
            _job_gone(setup, job, f"retrieval job failed: {desc.get('StatusMessage') or status}", failed=True)
    return changes


def _job_gone(setup: VaultSetup, job: JobRow, why: str, *, failed: bool) -> None:
    """The archive of a job that can no longer deliver goes back to NEW (its upload and parts are kept)."""
    if job.kind != v.ARCHIVE:
        return
    store = setup.store
    row = store.archive_for_job(job.job_id)
    if row is None or row.status not in (v.REQUESTED, v.STAGED, v.TRANSFERRING):
        return
    if failed:
        if row.job_failures + 1 >= MAX_JOB_FAILURES:
            if row.upload_id:
                setup.abort_upload(row.destination_key, row.upload_id)
            store.finish(
                row.pk,
                v.FAILED,
                message=f"job {job.job_id}: {why}; gave up after {MAX_JOB_FAILURES} failed jobs",
                at=setup.clock(),
                job_failures=row.job_failures + 1,
            )
            return
        store.update_archive(row.pk, status=v.NEW, job_failures=row.job_failures + 1, message=f"job {job.job_id}: {why}")
    else:
        store.update_archive(row.pk, status=v.NEW, message=f"job {job.job_id}: {why}")
