"""Copy a legacy S3 Glacier vault into S3: inventory, paced retrieval jobs, tree-hash verified transfers.

Three steps, each reading its work from the catalog and writing its outcome back, so any of
them can be repeated after a crash and picks up exactly what is left:

1. :func:`take_inventory` starts an inventory-retrieval job (unless one is pending) and, once
   its output is ready, records one row per archive with its destination key.
2. :func:`request_retrievals` starts archive-retrieval jobs, oldest archives first, within a
   daily byte quota and a number of jobs per run; it re-requests outputs that are about to
   expire before their archive was copied.
3. :func:`transfer_archives` copies each archive whose job output is ready, one tree-hash
   aligned chunk per multipart part: every chunk is checked against Glacier's
   ``x-amz-sha256-tree-hash`` before it is uploaded, and the chunk roots are combined and
   compared with the inventory's tree hash *before* the upload is completed.

The source vault is never written to: the Glacier client is wrapped in :class:`ReadOnlyGlacier`,
which only lets the read and job calls through (starting a job does not modify a vault).
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.catalog import vaults as v
from glacier_pipelines.catalog.vaults import ArchiveRow, JobRow, VaultStore
from glacier_pipelines.core import checksums, transfer, treehash, vault_inventory, vault_names

log = logging.getLogger(__name__)

MiB = 1024 * 1024
S3_MAX_OBJECT_BYTES = 5 * 1024**4  # S3's largest single object (5 TiB)
S3_MAX_PARTS = 10_000
S3_MIN_PART_BYTES = 5 * MiB  # every part but the last
MAX_CHUNK_BYTES = 4096 * MiB  # under S3's 5 GiB part limit, and a power of two
MAX_TRANSFER_ATTEMPTS = 5  # interrupted transfers of one archive before it is marked FAILED
MAX_JOB_FAILURES = 3  # failed retrieval jobs of one archive before it is marked FAILED
TIERS = ("Bulk", "Standard", "Expedited")
INVENTORY_FORMATS = ("CSV", "JSON")
EMPTY_TREE_HASH = treehash.tree_hash(b"")

_GLACIER_READS = frozenset({
    "initiate_job", "describe_job", "get_job_output", "list_jobs", "describe_vault", "list_vaults",
    "get_paginator", "can_paginate", "meta", "exceptions",
})


class ReadOnlyGlacier:
    """A boto3 Glacier client that can start jobs and read, and nothing else.

    DeleteArchive, DeleteVault, uploads, tags, policies and every other vault write raise
    PermissionError before any request is sent.
    """

    def __init__(self, client: Any):
        self._client = client

    def __getattr__(self, name: str) -> Any:
        if name not in _GLACIER_READS:
            raise PermissionError(f"glacier.{name} is refused: the source vault is read-only")
        return getattr(self._client, name)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class VaultSetup:
    """Everything the vault steps need; built by ``VaultResource.setup`` or by tests."""

    catalog: Catalog
    glacier: Any  # a boto3 Glacier client (wrapped read-only)
    s3: Any  # a boto3 S3 client
    upload: transfer.UploadSettings  # storage class and server-side encryption of the copies
    bucket: str = ""  # empty: upload.bucket
    prefix: str = "vaults"  # keys are <prefix>/<vault>/<name>
    tier: str = "Bulk"
    chunk_size: int = 64 * MiB  # rounded down to a power-of-two MiB: one tree-hash aligned range per part
    daily_bytes: int = 0  # bytes of retrieval jobs started per 24 h; 0: no limit
    max_jobs: int = 1000  # retrieval jobs started per run
    expiry_margin: timedelta = timedelta(hours=19)  # re-request a job output completed longer ago than this
    account_id: str = "-"
    inventory_format: str = "CSV"
    overrides: dict[str, str] | None = None  # archive id -> name (the names CSV)
    overrides_source: str | None = None  # where the overrides came from, for the metadata
    home: Path = Path(".glacier")  # inventory and report files go under <home>/vaults/<vault>/
    concurrency: int = 1  # archives transferred at once; memory is about chunk size x concurrency
    max_archives_per_run: int = 10_000
    max_describe: int = 1000  # DescribeJob calls per step
    min_part_size: int = S3_MIN_PART_BYTES
    clock: Callable[[], datetime] = _utcnow
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if not isinstance(self.glacier, ReadOnlyGlacier):
            self.glacier = ReadOnlyGlacier(self.glacier)
        self.bucket = self.bucket or self.upload.bucket
        self.home = Path(self.home)
        self.tier = _choice(self.tier, TIERS, "retrieval tier")
        self.inventory_format = _choice(self.inventory_format, INVENTORY_FORMATS, "inventory format").upper()
        if not MiB <= self.chunk_size <= MAX_CHUNK_BYTES:
            raise ValueError(f"chunk size must be between 1 MiB and 4 GiB, got {self.chunk_size}")
        effective = treehash.aligned_chunk_size(S3_MAX_OBJECT_BYTES, self.chunk_size)
        if effective < self.min_part_size:
            raise ValueError(
                f"chunk size {self.chunk_size} rounds down to {effective // MiB} MiB (tree-hash ranges are powers of two), "
                f"below the smallest S3 part ({self.min_part_size} bytes): use 8 MiB or more")
        if self.daily_bytes < 0 or self.max_jobs < 0 or self.concurrency < 1:
            raise ValueError("daily bytes and max jobs must be >= 0, concurrency >= 1")
        vault_names.destination_key(self.prefix, "vault", "name")  # refuses an unsafe prefix now

    @property
    def store(self) -> VaultStore:
        return VaultStore(self.catalog)


def _choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    for option in allowed:
        if str(value).strip().lower() == option.lower():
            return option
    raise ValueError(f"{what} {value!r} is not one of {', '.join(allowed)}")


def check_vault_name(setup: VaultSetup, vault: str) -> None:
    """Raise ValueError for a name that cannot be a vault (and so a key segment)."""
    vault_names.destination_key(setup.prefix, vault, "name")


class VaultNotFound(ValueError):
    """The vault named does not exist for the configured account and region: refused configuration (exit 2)."""


def require_vault(setup: VaultSetup, vault: str, *, region: str | None = None) -> None:
    """Raise :class:`VaultNotFound` (one line naming the vault and the settings to fix) unless DescribeVault finds it."""
    check_vault_name(setup, vault)
    try:
        setup.glacier.describe_vault(accountId=setup.account_id, vaultName=vault)
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise
        raise VaultNotFound(f"vault {vault!r} does not exist in account {setup.account_id!r}, region {region or 'default'}: "
                            "check --vault, GLACIER_VAULT_ACCOUNT_ID and GLACIER_VAULT_REGION") from exc


class RepeatedFault(RuntimeError):
    """The same fault ended several runs in a row: waiting longer would not change it (exit 1)."""


class FaultRepeats:
    """Counts consecutive runs that failed with the same message; ``observe`` raises :class:`RepeatedFault` at ``limit``.

    A successful run (``None``) or a different message starts the count again.
    """

    def __init__(self, limit: int = 3):
        self.limit, self.last, self.count = limit, None, 0

    def observe(self, fault: str | None) -> None:
        if fault is None:
            self.last, self.count = None, 0
            return
        self.count = self.count + 1 if fault == self.last else 1
        self.last = fault
        if self.count >= self.limit:
            raise RepeatedFault(f"the same fault ended {self.count} runs in a row, stopping: {fault}")


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _parse_date(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _mib(n: int) -> str:
    return f"{n / MiB:,.1f} MiB"


# ---- job polling ------------------------------------------------------------------------------


@dataclass
class JobChanges:
    checked: int = 0
    succeeded: list[str] = field(default_factory=list)  # job ids
    failed: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    vaults: set[str] = field(default_factory=set)  # vaults where something changed
    error: str | None = None  # polling stopped early on this (throttling, network): the rest waits for the next call


def refresh_jobs(setup: VaultSetup, *, vault: str | None = None, kind: str | None = None, limit: int | None = None,
                 max_seconds: float | None = None) -> JobChanges:
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
                transfer.abort_upload(setup.s3, setup.bucket, row.destination_key, row.upload_id)
            store.finish(row.pk, v.FAILED, message=f"job {job.job_id}: {why}; gave up after {MAX_JOB_FAILURES} failed jobs",
                         at=setup.clock(), job_failures=row.job_failures + 1)
            return
        store.update_archive(row.pk, status=v.NEW, job_failures=row.job_failures + 1, message=f"job {job.job_id}: {why}")
    else:
        store.update_archive(row.pk, status=v.NEW, message=f"job {job.job_id}: {why}")


# ---- 1. inventory -----------------------------------------------------------------------------


@dataclass
class InventoryResult:
    vault: str
    state: str  # "waiting" (job not complete), "loaded"
    job_id: str | None
    started: bool = False  # a new inventory job was initiated by this call
    message: str = ""
    archives: int = 0
    bytes: int = 0
    oldest: str | None = None
    newest: str | None = None
    new_archives: int = 0
    reasons: dict[str, int] = field(default_factory=lambda: {r: 0 for r in vault_names.REASONS})
    path: str | None = None
    inventory_date: str | None = None
    overrides: str | None = None

    @classmethod
    def from_job(cls, job: JobRow, state: str = "loaded", message: str = "") -> "InventoryResult":
        r = dict(job.result or {})
        return cls(vault=job.vault, state=state, job_id=job.job_id, message=message or r.get("message", ""),
                   archives=r.get("archives", 0), bytes=r.get("bytes", 0), oldest=r.get("oldest"), newest=r.get("newest"),
                   new_archives=r.get("new_archives", 0), reasons=r.get("reasons") or {x: 0 for x in vault_names.REASONS},
                   path=r.get("path"), inventory_date=r.get("inventory_date"), overrides=r.get("overrides"))


def take_inventory(setup: VaultSetup, vault: str, *, refresh: bool = False, run_id: str | None = None) -> InventoryResult:
    """Start an inventory-retrieval job unless one is pending; load its output once ready. Never waits.

    Once an inventory is loaded it is reused: pass ``refresh=True`` to take a new one (archives
    already known keep their status and destination key; new ones are added).
    """
    check_vault_name(setup, vault)
    store = setup.store
    job = store.latest_job(vault, v.INVENTORY)
    if job is not None and job.status == v.IN_PROGRESS:
        refresh_jobs(setup, vault=vault, kind=v.INVENTORY)
        job = store.job(job.job_id)
    if job is not None and job.status == v.IN_PROGRESS:
        return InventoryResult(vault, "waiting", job.job_id, message=f"waiting for inventory job {job.job_id} "
                                                                       f"(started {job.initiated_at:%Y-%m-%d %H:%M} UTC)")
    if job is not None and job.status == v.SUCCEEDED and job.loaded_at is None:
        return _load_inventory(setup, job, run_id)
    loaded = store.latest_loaded_inventory(vault)
    if loaded is not None and not refresh:
        return InventoryResult.from_job(loaded, message=f"inventory of job {loaded.job_id} already loaded")

    params = {"Type": "inventory-retrieval", "Format": setup.inventory_format,
              "Description": f"glacier-pipelines inventory of {vault}"}
    resp = setup.glacier.initiate_job(accountId=setup.account_id, vaultName=vault, jobParameters=params)
    job_id = resp["jobId"]
    store.record_job(job_id=job_id, vault=vault, kind=v.INVENTORY, initiated_at=setup.clock(), fmt=setup.inventory_format,
                     run_id=run_id)
    log.info("vault %s: inventory job %s started (%s)", vault, job_id, setup.inventory_format)
    refresh_jobs(setup, vault=vault, kind=v.INVENTORY)
    job = store.job(job_id)
    if job is not None and job.status == v.SUCCEEDED:
        result = _load_inventory(setup, job, run_id)
        result.started = True
        return result
    why = f"inventory job {job_id} started; waiting for Glacier (typically 3-5 hours)"
    if job is not None and job.status != v.IN_PROGRESS:
        why = f"inventory job {job_id} ended {job.status}: {job.message}; a new one starts on the next run"
    return InventoryResult(vault, "waiting", job_id, started=True, message=why)


def _unique_key(key: str, archive_id: str, taken: set[str]) -> str:
    head, _, base = key.rpartition("/")
    dot = base.rfind(".")
    stem, ext = (base[:dot], base[dot:]) if dot > 0 else (base, "")
    n = 0
    candidate = key
    while candidate in taken:
        n += 1
        tail = f"{stem}.{archive_id[:12]}{'-' + str(n) if n > 1 else ''}{ext}"
        candidate = f"{head}/{tail}" if head else tail
    return candidate


def _load_inventory(setup: VaultSetup, job: JobRow, run_id: str | None = None) -> InventoryResult:
    store = setup.store
    vault = job.vault
    try:
        resp = setup.glacier.get_job_output(accountId=setup.account_id, vaultName=vault, jobId=job.job_id)
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise
        store.update_job(job.job_id, status=v.EXPIRED, checked_at=setup.clock(), message="inventory output expired before it was loaded")
        return InventoryResult(vault, "waiting", job.job_id, message=f"the output of inventory job {job.job_id} expired before it "
                                                                     "was loaded; a new inventory starts on the next run")
    body = resp["body"].read()
    df = vault_inventory.parse_inventory(body, job.format or setup.inventory_format)
    named = {n.archive_id: n for n in vault_names.assign_names(df.to_dict("records"), setup.overrides)}

    known = {a.archive_id: a for a in store.archives(vault)}
    taken = {a.destination_key for a in known.values()}
    names, reasons, keys = [], [], []
    for archive_id in df["archive_id"]:
        if archive_id in known:  # keys never change once recorded: uploads may be under way
            row = known[archive_id]
            names.append(row.name)
            reasons.append(row.naming_reason)
            keys.append(row.destination_key)
            continue
        item = named[archive_id]
        name, reason = item.name, item.reason
        try:
            key = vault_names.destination_key(setup.prefix, vault, name)
        except ValueError:  # e.g. longer than S3's 1,024 bytes
            name, reason = f"00error/{archive_id}", "error"
            key = vault_names.destination_key(setup.prefix, vault, name)
        key = _unique_key(key, archive_id, taken)
        taken.add(key)
        names.append(name)
        reasons.append(reason)
        keys.append(key)
    df = df.assign(name=names, naming_reason=reasons, destination_key=keys)

    now = setup.clock()
    rows = [
        {"archive_id": r.archive_id, "description": r.description, "size": int(r.size),
         "creation_date": r.creation_date.to_pydatetime(), "tree_hash": r.sha256_tree_hash, "name": r.name,
         "naming_reason": r.naming_reason, "destination_key": r.destination_key}
        for r in df.itertuples(index=False)
    ]
    new = store.add_archives(vault, rows, job.job_id, now)
    statuses = {a.archive_id: a.status for a in store.archives(vault)}
    df = df.assign(vault=vault, status=[statuses.get(a, v.NEW) for a in df["archive_id"]])

    folder = setup.home / "vaults" / vault
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"inventory-{now:%Y%m%dT%H%M%SZ}-{job.job_id[:8]}.csv"
    out = df[["vault", "archive_id", "description", "size", "creation_date", "sha256_tree_hash", "name", "naming_reason",
              "destination_key", "status"]].rename(columns={"sha256_tree_hash": "tree_hash"})
    tmp = path.with_name(path.name + ".part")
    out.to_csv(tmp, index=False)
    tmp.replace(path)

    summary = vault_inventory.inventory_summary(df)
    counts = {r: 0 for r in vault_names.REASONS}
    for reason in reasons:
        counts[reason] = counts.get(reason, 0) + 1
    result = {
        "archives": summary["archives"], "bytes": summary["bytes"], "oldest": summary["oldest"], "newest": summary["newest"],
        "new_archives": new, "reasons": counts, "path": str(path), "inventory_date": df.attrs.get("inventory_date"),
        "overrides": setup.overrides_source, "message": f"inventory of job {job.job_id} loaded: {summary['archives']} archive(s), {new} new",
    }
    store.update_job(job.job_id, loaded_at=now, result=result)
    store.record_progress(vault, run_id=run_id, at=now, bytes_transferred=0)
    log.info("vault %s: %s", vault, result["message"])
    return InventoryResult.from_job(store.job(job.job_id))


# ---- 2. retrieval jobs ------------------------------------------------------------------------


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

    @property
    def bytes_started(self) -> int:
        return sum(size for _, size in self.started)


def _head(setup: VaultSetup, key: str) -> dict[str, Any] | None:
    try:
        return setup.s3.head_object(Bucket=setup.bucket, Key=key)
    except ClientError as exc:
        if _code(exc) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def _already_there(setup: VaultSetup, row: ArchiveRow) -> tuple[bool, str | None]:
    """(True, None) if the destination holds this archive, (False, reason) if it holds something else, (False, None) if empty."""
    head = _head(setup, row.destination_key)
    if head is None:
        return False, None
    size = head.get("ContentLength")
    their_hash = (head.get("Metadata") or {}).get("glacier-tree-hash")
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
    params = {"Type": "archive-retrieval", "ArchiveId": row.archive_id, "Tier": setup.tier,
              "Description": f"glacier-pipelines copy to s3://{setup.bucket}"[:1024]}
    return setup.glacier.initiate_job(accountId=setup.account_id, vaultName=row.vault, jobParameters=params)["jobId"]


_STOP_CODES = ("PolicyEnforcedException", "InsufficientCapacityException", "ThrottlingException", "LimitExceededException")


def request_retrievals(setup: VaultSetup, vault: str, *, run_id: str | None = None) -> RetrievalReport:
    """Start archive-retrieval jobs, oldest archives first, within the daily byte quota and ``max_jobs`` per run.

    Also re-requests the output of jobs that completed longer than ``expiry_margin`` ago while
    their archive is not copied yet, skips archives S3 cannot hold as one object, marks DONE
    archives whose destination already holds them (HEAD, same size), and needs no job for
    0-byte archives.
    """
    check_vault_name(setup, vault)
    store = setup.store
    report = RetrievalReport(vault)
    report.jobs = refresh_jobs(setup, vault=vault, kind=v.ARCHIVE)
    now = setup.clock()
    window = now - timedelta(hours=24)
    used = store.quota_used(window)
    started = 0

    def fits(size: int) -> bool:
        # An archive larger than the whole quota starts alone, when nothing else was started in 24 h.
        return not setup.daily_bytes or used + size <= setup.daily_bytes or used == 0

    # Outputs about to expire first: their archives are the furthest along.
    cutoff = now - setup.expiry_margin
    for row in store.archives(vault, [v.STAGED, v.TRANSFERRING]):
        if row.job_id is None or row.job_completed_at is None or row.job_completed_at > cutoff:
            continue
        if started >= setup.max_jobs:
            report.rate_limited = True
            break
        if not fits(row.size):
            report.quota_limited = True
            break
        job_id = _start_job(setup, row, vault, report, run_id)
        if job_id is None:
            if report.stopped:
                break
            continue
        hours = (now - row.job_completed_at).total_seconds() / 3600
        store.start_job(row, job_id=job_id, tier=setup.tier, at=now, run_id=run_id,
                        message=f"output of job {row.job_id} completed {hours:.1f} h ago and was not copied yet; "
                                f"requested again as job {job_id}")
        report.reinitiated.append((row.archive_id, row.job_id, job_id))
        used += row.size
        started += 1

    # Then new archives, oldest first. Every archive handled below leaves NEW, so each batch is read from the top.
    while not (report.rate_limited or report.quota_limited or report.stopped):
        rows = store.archives(vault, [v.NEW], limit=500)
        if not rows:
            break
        for row in rows:
            if row.size > S3_MAX_OBJECT_BYTES:
                reason = (f"{row.size:,} bytes is more than S3's largest single object ({S3_MAX_OBJECT_BYTES:,} bytes): "
                          "skipped; retrieve it in byte ranges and store it as several objects by hand")
                store.finish(row.pk, v.SKIPPED, message=reason, at=now, run_id=run_id)
                report.skipped.append((row.archive_id, reason))
                continue
            if row.size == 0:
                store.update_archive(row.pk, status=v.STAGED, message="empty archive: no retrieval job needed", run_id=run_id)
                report.empty.append(row.archive_id)
                continue
            if started >= setup.max_jobs:
                report.rate_limited = True
                break
            if not fits(row.size):
                report.quota_limited = True
                break
            present, conflict = _already_there(setup, row)
            if present:
                store.finish(row.pk, v.DONE, message=f"s3://{setup.bucket}/{row.destination_key} already exists with the "
                                                      "expected size: not retrieved again", at=now, run_id=run_id, bucket=setup.bucket)
                report.already_present.append(row.archive_id)
                continue
            if conflict:
                _fail(setup, row, conflict, report.failed, run_id)
                continue
            job_id = _start_job(setup, row, vault, report, run_id)
            if job_id is None:
                if report.stopped:
                    break
                continue
            store.start_job(row, job_id=job_id, tier=setup.tier, at=now, run_id=run_id, message=None)
            report.started.append((row.archive_id, row.size))
            used += row.size
            started += 1
    report.quota_used = used
    log.info("vault %s: %d job(s) started (%s), %d re-requested, %d skipped, %d already in S3", vault, len(report.started),
             _mib(report.bytes_started), len(report.reinitiated), len(report.skipped), len(report.already_present))
    return report


def _fail(setup: VaultSetup, row: ArchiveRow, reason: str, into: list[tuple[str, str]], run_id: str | None) -> None:
    if row.upload_id:
        transfer.abort_upload(setup.s3, setup.bucket, row.destination_key, row.upload_id)
    setup.store.finish(row.pk, v.FAILED, message=reason, at=setup.clock(), run_id=run_id)
    into.append((row.archive_id, reason))


# ---- 3. transfers -----------------------------------------------------------------------------


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


def chunk_size_for(size: int, configured: int) -> int:
    """The tree-hash aligned range (and part) size for an archive: configured, grown to stay within 10,000 parts."""
    needed = MiB
    while needed * S3_MAX_PARTS < size:
        needed *= 2
    return treehash.aligned_chunk_size(size, max(configured, needed))


def _object_metadata(row: ArchiveRow) -> dict[str, str]:
    return {"glacier-vault": row.vault, "glacier-archive-id": row.archive_id, "glacier-tree-hash": row.tree_hash,
            "glacier-creation-date": row.creation_date.strftime("%Y-%m-%dT%H:%M:%SZ")}


def _glacier_range(setup: VaultSetup, row: ArchiveRow, start: int, end: int) -> tuple[bytes, str | None]:
    try:
        resp = setup.glacier.get_job_output(accountId=setup.account_id, vaultName=row.vault, jobId=row.job_id,
                                            range=f"bytes={start}-{end}")
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
    parts: dict[int, str] = {}
    try:
        for page in setup.s3.get_paginator("list_parts").paginate(Bucket=setup.bucket, Key=key, UploadId=upload_id):
            for p in page.get("Parts", []):
                parts[p["PartNumber"]] = p["ETag"].strip('"')
    except ClientError as exc:
        if _code(exc) in ("NoSuchUpload", "404"):
            return None
        raise
    return parts


def _transfer_one(setup: VaultSetup, row: ArchiveRow, report: TransferReport, run_id: str | None) -> None:
    store = setup.store
    s3 = setup.s3
    key = row.destination_key
    if row.size == 0:
        if row.tree_hash != EMPTY_TREE_HASH:
            raise IntegrityError(f"the inventory lists 0 bytes with tree hash {row.tree_hash}, not the empty input's {EMPTY_TREE_HASH}")
        present, conflict = _already_there(setup, row)
        if conflict:
            raise IntegrityError(conflict)
        if not present:
            s3.put_object(Bucket=setup.bucket, Key=key, Body=b"", ChecksumAlgorithm="SHA256",
                          ChecksumSHA256=checksums.b64(hashlib.sha256(b"").digest()), Metadata=_object_metadata(row),
                          **setup.upload.object_args())
        store.finish(row.pk, v.DONE, message=f"empty archive stored as s3://{setup.bucket}/{key}", at=setup.clock(),
                     run_id=run_id, bucket=setup.bucket)
        report.done.append((row.archive_id, 0))
        return

    upload_id, chunk = row.upload_id, row.chunk_size
    done_parts: dict[int, v.PartRow] = {}
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
            store.finish(row.pk, v.DONE, message=f"s3://{setup.bucket}/{key} already exists with the expected size: not transferred again",
                         at=setup.clock(), run_id=run_id, bucket=setup.bucket)
            report.already_present.append(row.archive_id)
            return
        if conflict:
            raise IntegrityError(conflict)
        chunk = chunk_size_for(row.size, setup.chunk_size)
        upload_id = s3.create_multipart_upload(Bucket=setup.bucket, Key=key, ChecksumAlgorithm="SHA256",
                                               Metadata=_object_metadata(row), **setup.upload.object_args())["UploadId"]
        store.start_upload(row.pk, upload_id, chunk, setup.bucket)
    elif row.status != v.TRANSFERRING:
        store.update_archive(row.pk, status=v.TRANSFERRING)
    assert chunk is not None

    ranges = treehash.aligned_ranges(row.size, chunk)
    roots: dict[int, str] = {n: p.tree_hash for n, p in done_parts.items()}
    parts: dict[int, dict[str, Any]] = {
        n: {"PartNumber": n, "ETag": p.etag, "ChecksumSHA256": p.checksum_sha256} for n, p in done_parts.items()}
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
            raise IntegrityError(f"part {number} (bytes {start}-{end}): tree hash of the bytes received is {actual}, "
                                 f"Glacier announced {announced}")
        digest = checksums.b64(hashlib.sha256(data).digest())
        resp = s3.upload_part(Bucket=setup.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data,
                              ChecksumAlgorithm="SHA256", ChecksumSHA256=digest)
        returned = resp.get("ChecksumSHA256")
        if returned is not None and returned != digest:
            raise IntegrityError(f"part {number}: S3 reports checksum {returned}, sent {digest}")
        etag = resp["ETag"].strip('"')
        store.record_part(row.pk, upload_id, number, etag=etag, checksum_sha256=digest, tree_hash=actual, size=len(data))
        parts[number] = {"PartNumber": number, "ETag": etag, "ChecksumSHA256": digest}
        roots[number] = actual
        report.bytes_transferred += len(data)
        report.parts_uploaded += 1
        del data

    whole = treehash.combine_ranges([bytes.fromhex(roots[n]) for n in range(1, len(ranges) + 1)], chunk).hex()
    if whole != row.tree_hash:
        unsent = f" ({unannounced} range(s) came without x-amz-sha256-tree-hash)" if unannounced else ""
        raise IntegrityError(f"tree hash of the {len(ranges)} part(s) is {whole}, the inventory says {row.tree_hash}{unsent}")
    resp = s3.complete_multipart_upload(Bucket=setup.bucket, Key=key, UploadId=upload_id,
                                        MultipartUpload={"Parts": [parts[n] for n in range(1, len(ranges) + 1)]})
    head = _head(setup, key)
    if head is None or head.get("ContentLength") != row.size:
        raise OSError(f"s3://{setup.bucket}/{key} reports {None if head is None else head.get('ContentLength')} bytes "
                      f"after completion, expected {row.size}")
    store.finish(row.pk, v.DONE, message=f"copied to s3://{setup.bucket}/{key} in {len(ranges)} part(s), tree hash verified"
                 + (f" ({unannounced} range(s) without x-amz-sha256-tree-hash: verified by the inventory's whole-archive tree hash)"
                    if unannounced else ""),
                 at=setup.clock(), run_id=run_id, bucket=setup.bucket, etag=(resp.get("ETag") or "").strip('"'),
                 s3_checksum=resp.get("ChecksumSHA256") or head.get("ChecksumSHA256"))
    report.done.append((row.archive_id, row.size))


def _transfer_guarded(setup: VaultSetup, row: ArchiveRow, report: TransferReport, run_id: str | None) -> None:
    store = setup.store
    try:
        _transfer_one(setup, row, report, run_id)
    except IntegrityError as exc:
        fresh = store.archive(row.pk)
        if fresh.upload_id:
            transfer.abort_upload(setup.s3, setup.bucket, fresh.destination_key, fresh.upload_id)
        store.finish(row.pk, v.FAILED, message=str(exc), at=setup.clock(), run_id=run_id)
        report.failed.append((row.archive_id, str(exc)))
        log.warning("vault %s: archive %s FAILED: %s", row.vault, row.archive_id, exc)
    except JobGone as exc:
        if row.job_id:
            store.update_job(row.job_id, status=v.EXPIRED, checked_at=setup.clock(), message=str(exc))
        store.update_archive(row.pk, status=v.NEW, message=f"{exc}; a new retrieval job will be started (parts already "
                                                           "uploaded are kept)")
        report.requeued.append((row.archive_id, str(exc)))
    except (ClientError, BotoCoreError, OSError) as exc:
        fresh = store.archive(row.pk)
        attempts = fresh.attempts + 1
        if attempts >= MAX_TRANSFER_ATTEMPTS:
            if fresh.upload_id:
                transfer.abort_upload(setup.s3, setup.bucket, fresh.destination_key, fresh.upload_id)
            reason = f"gave up after {attempts} interrupted attempts; last error: {exc}"
            store.finish(row.pk, v.FAILED, message=reason, at=setup.clock(), run_id=run_id, attempts=attempts)
            report.failed.append((row.archive_id, reason))
        else:
            store.update_archive(row.pk, attempts=attempts, message=f"transfer interrupted (attempt {attempts}): {exc}; "
                                                                    "the next run resumes from the first missing part")
            report.interrupted.append((row.archive_id, str(exc)))
        log.warning("vault %s: archive %s interrupted: %s", row.vault, row.archive_id, exc)


def transfer_archives(setup: VaultSetup, vault: str, *, run_id: str | None = None) -> TransferReport:
    """Copy every archive whose job output is ready (at most ``max_archives_per_run``), then record a progress snapshot.

    An archive whose bytes fail verification is aborted and FAILED alone; one interrupted by
    an S3 or network error keeps its open upload and recorded parts for the next run.
    """
    check_vault_name(setup, vault)
    store = setup.store
    started = time.monotonic()
    report = TransferReport(vault)
    report.jobs = refresh_jobs(setup, vault=vault, kind=v.ARCHIVE)
    rows = store.archives(vault, [v.STAGED, v.TRANSFERRING], limit=setup.max_archives_per_run)
    report.considered = len(rows)
    if setup.concurrency == 1 or len(rows) < 2:
        for row in rows:
            _transfer_guarded(setup, row, report, run_id)
    else:  # reports are appended to from threads: list.append is atomic, the byte counters are per call
        sub_reports = [TransferReport(vault) for _ in rows]
        with ThreadPoolExecutor(max_workers=setup.concurrency, thread_name_prefix="vault") as pool:
            list(pool.map(lambda pair: _transfer_guarded(setup, pair[0], pair[1], run_id), zip(rows, sub_reports)))
        for sub in sub_reports:
            report.done += sub.done
            report.already_present += sub.already_present
            report.failed += sub.failed
            report.interrupted += sub.interrupted
            report.requeued += sub.requeued
            report.bytes_transferred += sub.bytes_transferred
            report.parts_uploaded += sub.parts_uploaded
    report.seconds = time.monotonic() - started
    store.record_progress(vault, run_id=run_id, at=setup.clock(), bytes_transferred=report.bytes_transferred)
    log.info("vault %s: %d archive(s) copied, %s uploaded in %.1f s, %d failed, %d interrupted", vault, len(report.done),
             _mib(report.bytes_transferred), report.seconds, len(report.failed), len(report.interrupted))
    return report


# ---- reporting --------------------------------------------------------------------------------


def vault_report(setup: VaultSetup, vault: str) -> list[dict[str, Any]]:
    """One dict per archive of the vault, in creation order: what ``vault migrate --json`` prints."""
    out = []
    for row in setup.store.archives(vault):
        out.append({
            "archiveId": row.archive_id,
            "destinationKey": row.destination_key,
            "status": row.status,
            "sizeInBytes": row.size,
            "messages": row.messages,
            "creationDate": row.creation_date.isoformat(),
            "sha256TreeHash": row.tree_hash,
            "namingReason": row.naming_reason,
            "storedFileUrl": f"s3://{row.bucket or setup.bucket}/{row.destination_key}" if row.status == v.DONE else None,
        })
    return out


def report_frame(setup: VaultSetup, vault: str) -> pd.DataFrame:
    columns = ["archiveId", "destinationKey", "status", "sizeInBytes", "creationDate", "namingReason", "messages"]
    rows = vault_report(setup, vault)
    df = pd.DataFrame(rows, columns=columns + ["sha256TreeHash", "storedFileUrl"])
    df["messages"] = df["messages"].map(lambda m: m[-1] if m else "")  # the latest word on each archive
    return df


def write_report(setup: VaultSetup, vault: str) -> Path:
    """The full per-archive report as CSV under ``<home>/vaults/<vault>/report.csv`` (pandas-readable)."""
    folder = setup.home / "vaults" / vault
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "report.csv"
    tmp = path.with_name(path.name + ".part")
    report_frame(setup, vault).to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def retry_failed(setup: VaultSetup, vault: str, archive_ids: list[str] | None = None) -> int:
    """Put FAILED archives (all, or those named) back to NEW for another attempt; returns how many.

    FAILED is otherwise final, so a damaged range is not fetched again and again. The next
    retrievals step starts a new job for each (the destination is checked with HEAD first).
    """
    store = setup.store
    count = 0
    for row in store.archives(vault, [v.FAILED]):
        if archive_ids is not None and row.archive_id not in archive_ids:
            continue
        store.update_archive(row.pk, status=v.NEW, attempts=0, job_failures=0, upload_id=None, chunk_size=None,
                             message="FAILED archive put back to NEW for another attempt")
        count += 1
    return count


def progress_history(setup: VaultSetup, vault: str) -> list[dict[str, Any]]:
    return setup.store.progress(vault)


def estimate_remaining(setup: VaultSetup, vault: str, *, window: timedelta = timedelta(days=7)) -> dict[str, Any]:
    """Bytes left and, from the throughput of the snapshots in the last ``window``, the time left.

    ``seconds`` is None while fewer than two snapshots show progress. ``quota_days`` is the
    lower bound the daily quota sets (bytes left / daily bytes), None without a quota.
    """
    totals = setup.store.status_totals(vault)
    remaining = sum(totals[s][1] for s in v.PENDING)
    out: dict[str, Any] = {"bytes_remaining": remaining, "bytes_per_second": None, "seconds": None,
                           "quota_days": (remaining / setup.daily_bytes) if setup.daily_bytes else None}
    history = [p for p in setup.store.progress(vault) if p["recorded_at"] >= setup.clock() - window]
    if len(history) >= 2:
        first, last = history[0], history[-1]
        elapsed = (last["recorded_at"] - first["recorded_at"]).total_seconds()
        moved = last["bytes_done"] - first["bytes_done"]
        if elapsed > 0 and moved > 0:
            rate = moved / elapsed
            out["bytes_per_second"] = rate
            out["seconds"] = remaining / rate
    if remaining == 0:
        out["seconds"] = 0.0
    return out


def format_duration(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "unknown"
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s"


def migration_state(setup: VaultSetup, vault: str) -> dict[str, Any]:
    """Where a vault copy stands: inventory state, archives and bytes per status, and whether it is finished."""
    store = setup.store
    job = store.latest_job(vault, v.INVENTORY)
    loaded = store.latest_loaded_inventory(vault)
    if loaded is not None and (job is None or job.job_id == loaded.job_id or job.status != v.IN_PROGRESS):
        inventory = "loaded"
    elif job is not None and job.status in (v.IN_PROGRESS, v.SUCCEEDED):
        inventory = "waiting"
    else:
        inventory = "none"
    totals = store.status_totals(vault)
    pending = sum(totals[s][0] for s in v.PENDING)
    return {
        "vault": vault, "inventory": inventory, "archives": {s: n for s, (n, _) in totals.items()},
        "bytes": {s: b for s, (_, b) in totals.items()}, "pending": pending,
        "finished": inventory == "loaded" and pending == 0,
    }


def migrate(setup: VaultSetup, vault: str, *, wait: bool, poll_seconds: float = 300.0, timeout_seconds: float = 7 * 86400.0,
            progress: Callable[[str], Any] = print, refresh_inventory: bool = False) -> list[dict[str, Any]]:
    """Drive inventory -> retrievals -> transfers for one vault; returns :func:`vault_report`.

    Without ``wait`` one pass is made (jobs Glacier has not finished are left for the next
    call). With ``wait`` passes repeat every ``poll_seconds`` until every archive is DONE,
    FAILED or SKIPPED, or ``timeout_seconds`` have passed (the report then shows the pending
    statuses). Progress lines go to ``progress``.
    """
    check_vault_name(setup, vault)
    deadline = time.monotonic() + timeout_seconds
    first = True
    while True:
        inventory = take_inventory(setup, vault, refresh=refresh_inventory and first)
        first = False
        progress(f"{vault}: {inventory.message}")
        if inventory.state == "loaded":
            r = request_retrievals(setup, vault)
            pacing = " (daily quota reached)" if r.quota_limited else " (job limit per run reached)" if r.rate_limited else ""
            progress(f"{vault}: {len(r.started)} retrieval job(s) started ({_mib(r.bytes_started)}){pacing}, "
                     f"{len(r.reinitiated)} re-requested, {len(r.skipped)} skipped, {len(r.already_present)} already in S3")
            t = transfer_archives(setup, vault)
            progress(f"{vault}: {len(t.done)} archive(s) copied ({_mib(t.bytes_transferred)}), {len(t.failed)} failed, "
                     f"{len(t.interrupted)} interrupted")
        state = migration_state(setup, vault)
        counts = ", ".join(f"{s} {n}" for s, n in state["archives"].items() if n)
        progress(f"{vault}: {counts or 'no archives yet'}")
        if state["finished"] or not wait:
            break
        if time.monotonic() + poll_seconds > deadline:
            progress(f"{vault}: timed out after {timeout_seconds:.0f} s with {state['pending']} archive(s) pending")
            break
        setup.sleep(poll_seconds)
    return vault_report(setup, vault)


def plan_runs(setup: VaultSetup) -> dict[str, str]:
    """vault -> a key of its actionable state, for every vault a run would move forward now.

    Actionable: an inventory whose output is ready but not loaded; archives whose job output is
    ready (the key changes with their job ids and attempts); new archives when the daily quota
    lets the oldest one start (the key changes with the quota used). The same state gives the
    same key, so a repeated sensor tick adds no run.
    """
    store = setup.store
    used = store.quota_used(setup.clock() - timedelta(hours=24))
    plans: dict[str, str] = {}
    for vault in store.vaults_with_work():
        parts: list[str] = []
        job = store.latest_job(vault, v.INVENTORY)
        if job is not None and job.status == v.SUCCEEDED and job.loaded_at is None:
            parts.append(f"inventory:{job.job_id}")
        for archive_id, job_id, attempts in store.staged_state(vault):
            parts.append(f"staged:{archive_id}:{job_id}:{attempts}")
        first = store.first_new(vault)
        if first is not None and setup.max_jobs > 0 and (
                not setup.daily_bytes or used == 0 or used + first.size <= setup.daily_bytes or first.size == 0):
            new = store.status_totals(vault)[v.NEW][0]
            parts.append(f"new:{new}:{used}")
        if parts:
            plans[vault] = hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()[:20]
    return plans


def progress_plot_png(setup: VaultSetup, vault: str) -> bytes | None:
    """A PNG of bytes copied vs the vault's total over the recorded snapshots; None before the first one."""
    history = setup.store.progress(vault)
    if not history:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global state, safe in threads

    times = [p["recorded_at"] for p in history]
    gib = 1024**3
    done = [p["bytes_done"] / gib for p in history]
    total = [p["bytes_total"] / gib for p in history]
    settled = [(p["bytes_done"] + p["bytes_failed"] + p["bytes_skipped"]) / gib for p in history]
    fig = Figure(figsize=(7, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.step(times, total, where="post", label="vault total", color="0.5", linestyle="--")
    ax.step(times, settled, where="post", label="done + failed + skipped", color="tab:orange", alpha=0.6)
    ax.step(times, done, where="post", label="copied and verified", color="tab:blue", linewidth=2)
    ax.plot(times, done, "o", color="tab:blue", markersize=3)
    ax.set_ylabel("GiB")
    ax.set_title(f"vault {vault}: bytes copied over {len(history)} recorded step(s)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize="small")
    fig.autofmt_xdate()
    fig.subplots_adjust(left=0.09, right=0.98, top=0.9, bottom=0.24)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


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
            head = setup.s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if _code(exc) not in ("404", "NoSuchKey", "NotFound"):
                raise
            head = None
        if head is None:
            fault = f"s3://{bucket}/{key} is missing"
        elif head.get("ContentLength") != row.size:
            fault = f"s3://{bucket}/{key} holds {head.get('ContentLength')} bytes, the inventory says {row.size}"
        elif row.s3_checksum and head.get("ChecksumSHA256") != row.s3_checksum:
            fault = f"s3://{bucket}/{key} reports SHA-256 checksum {head.get('ChecksumSHA256')}, {row.s3_checksum} was recorded at copy time"
        elif row.etag and (head.get("ETag") or "").strip('"') != row.etag:
            fault = f"s3://{bucket}/{key} has ETag {(head.get('ETag') or '').strip(chr(34))}, {row.etag} was recorded at copy time"
        elif row.etag and (head.get("Metadata") or {}).get("glacier-tree-hash") != row.tree_hash:
            fault = (f"s3://{bucket}/{key} carries tree hash {(head.get('Metadata') or {}).get('glacier-tree-hash')}, "
                     f"the inventory says {row.tree_hash}")
        else:
            continue
        store.finish(row.pk, v.FAILED, message=f"integrity check: {fault}", at=setup.clock(), run_id=run_id)
        faults.append((row.archive_id, key, fault))
    return faults
