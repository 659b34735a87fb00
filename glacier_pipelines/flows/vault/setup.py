"""The vault copy's settings (:class:`VaultSetup`), the read-only Glacier client, and the faults every step shares."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.catalog import claims as cl
from glacier_pipelines.catalog.claims import ClaimStore
from glacier_pipelines.catalog.vault_rows import ArchiveRow
from glacier_pipelines.catalog.vaults import VaultStore
from glacier_pipelines.core import transfer, treehash, vault_names
from glacier_pipelines.core.objectstore import ObjectStore, S3Store, Upload

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

_GLACIER_READS = frozenset(
    {
        "initiate_job",
        "describe_job",
        "get_job_output",
        "list_jobs",
        "describe_vault",
        "list_vaults",
        "get_paginator",
        "can_paginate",
        "meta",
        "exceptions",
    }
)


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
    s3: Any  # a boto3 S3 client: the copies' ObjectStore is built on it (``objects``)
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
    claim_timeout: timedelta = cl.CLAIM_TIMEOUT  # an archive's claim not refreshed this long belongs to a dead run
    run_finished: Callable[[str], bool] | None = None  # tells a Dagster run that is over (its claims are taken over)

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
                f"below the smallest S3 part ({self.min_part_size} bytes): use 8 MiB or more"
            )
        if self.daily_bytes < 0 or self.max_jobs < 0 or self.concurrency < 1:
            raise ValueError("daily bytes and max jobs must be >= 0, concurrency >= 1")
        vault_names.destination_key(self.prefix, "vault", "name")  # refuses an unsafe prefix now

    @property
    def store(self) -> VaultStore:
        return VaultStore(self.catalog)

    def objects(self, bucket: str | None = None) -> ObjectStore:
        """The ObjectStore of the copies' bucket (or of ``bucket``, where an archive was copied before a change of bucket)."""
        return S3Store(self.s3, bucket or self.bucket)

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Abort an archive's open multipart upload; one already gone is what was wanted."""
        self.objects().abort(Upload(key=key, upload_id=upload_id))

    @property
    def claims(self) -> ClaimStore:
        return ClaimStore(self.catalog, timeout=self.claim_timeout, run_finished=self.run_finished)


@contextmanager
def hold_archive(
    setup: VaultSetup, claims: ClaimStore, row: ArchiveRow, run: str, left_to_others: list[tuple[str, str]]
) -> Iterator[ArchiveRow | None]:
    """Claim one archive for ``run``: yields its row read again (another run may have moved it on meanwhile), or None
    when another live run holds it (noted in ``left_to_others``); the claim is given up on the way out."""
    key = cl.claim_key(row.vault, row.archive_id)
    claim = claims.claim(cl.VAULT_ARCHIVE, key, run, subject=f"vault {row.vault} archive {row.archive_id}")
    if not claim.won:
        left_to_others.append((row.archive_id, claim.holder))
        yield None
        return
    try:
        yield setup.store.archive(row.pk)
    finally:
        claims.done(cl.VAULT_ARCHIVE, key, run)


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
        raise VaultNotFound(
            f"vault {vault!r} does not exist in account {setup.account_id!r}, region {region or 'default'}: "
            "check --vault, GLACIER_VAULT_ACCOUNT_ID and GLACIER_VAULT_REGION"
        ) from exc


class RepeatedFault(RuntimeError):
    """The same fault ended several runs in a row: waiting longer would not change it (exit 1)."""


class FaultRepeats:
    """Counts consecutive runs that failed with the same message; ``observe`` raises :class:`RepeatedFault` at ``limit``.

    A successful run (``None``) or a different message starts the count again.
    """

    last: str | None

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
