"""Step 1: the vault's inventory (an inventory-retrieval job, then one catalog row per archive with its destination key)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from glacier_pipelines.catalog import claims as cl
from glacier_pipelines.catalog import vault_tables as v
from glacier_pipelines.catalog.vault_rows import JobRow
from glacier_pipelines.core import vault_inventory, vault_names
from glacier_pipelines.flows.vault.jobs import refresh_jobs
from glacier_pipelines.flows.vault.setup import VaultSetup, _code, check_vault_name

log = logging.getLogger(__name__)


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
        return cls(
            vault=job.vault,
            state=state,
            job_id=job.job_id,
            message=message or r.get("message", ""),
            archives=r.get("archives", 0),
            bytes=r.get("bytes", 0),
            oldest=r.get("oldest"),
            newest=r.get("newest"),
            new_archives=r.get("new_archives", 0),
            reasons=r.get("reasons") or {x: 0 for x in vault_names.REASONS},
            path=r.get("path"),
            inventory_date=r.get("inventory_date"),
            overrides=r.get("overrides"),
        )


def take_inventory(setup: VaultSetup, vault: str, *, refresh: bool = False, run_id: str | None = None) -> InventoryResult:
    """Start an inventory-retrieval job unless one is pending; load its output once ready. Never waits.

    Once an inventory is loaded it is reused: pass ``refresh=True`` to take a new one (archives
    already known keep their status and destination key; new ones are added). The vault's
    inventory is claimed first: while another live run takes it, this one waits for that run.
    """
    check_vault_name(setup, vault)
    run = run_id or cl.local_run_id()
    claims, key = setup.claims, cl.claim_key(vault)
    claim = claims.claim(cl.VAULT_INVENTORY, key, run, subject=f"inventory of vault {vault}")
    if not claim.won:
        loaded = setup.store.latest_loaded_inventory(vault)
        if loaded is not None and not refresh:
            return InventoryResult.from_job(loaded, message=f"inventory of job {loaded.job_id} already loaded")
        job = setup.store.latest_job(vault, v.INVENTORY)
        return InventoryResult(
            vault, "waiting", job.job_id if job else None, message=f"run {claim.holder} is taking the inventory of {vault}; waiting for it"
        )
    try:
        return _take_inventory(setup, vault, refresh, run)
    finally:
        claims.done(cl.VAULT_INVENTORY, key, run)


def _take_inventory(setup: VaultSetup, vault: str, refresh: bool, run_id: str) -> InventoryResult:
    store = setup.store
    job = store.latest_job(vault, v.INVENTORY)
    if job is not None and job.status == v.IN_PROGRESS:
        refresh_jobs(setup, vault=vault, kind=v.INVENTORY)
        job = store.job(job.job_id)
    if job is not None and job.status == v.IN_PROGRESS:
        return InventoryResult(
            vault, "waiting", job.job_id, message=f"waiting for inventory job {job.job_id} (started {job.initiated_at:%Y-%m-%d %H:%M} UTC)"
        )
    if job is not None and job.status == v.SUCCEEDED and job.loaded_at is None:
        return _load_inventory(setup, job, run_id)
    loaded = store.latest_loaded_inventory(vault)
    if loaded is not None and not refresh:
        return InventoryResult.from_job(loaded, message=f"inventory of job {loaded.job_id} already loaded")

    params = {"Type": "inventory-retrieval", "Format": setup.inventory_format, "Description": f"glacier-pipelines inventory of {vault}"}
    resp = setup.glacier.initiate_job(accountId=setup.account_id, vaultName=vault, jobParameters=params)
    job_id = resp["jobId"]
    store.record_job(job_id=job_id, vault=vault, kind=v.INVENTORY, initiated_at=setup.clock(), fmt=setup.inventory_format, run_id=run_id)
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
        return InventoryResult(
            vault,
            "waiting",
            job.job_id,
            message=f"the output of inventory job {job.job_id} expired before it was loaded; a new inventory starts on the next run",
        )
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
        {
            "archive_id": r.archive_id,
            "description": r.description,
            "size": int(r.size),
            "creation_date": r.creation_date.to_pydatetime(),
            "tree_hash": r.sha256_tree_hash,
            "name": r.name,
            "naming_reason": r.naming_reason,
            "destination_key": r.destination_key,
        }
        for r in df.itertuples(index=False)
    ]
    new = store.add_archives(vault, rows, job.job_id, now)
    statuses = {a.archive_id: a.status for a in store.archives(vault)}
    df = df.assign(vault=vault, status=[statuses.get(a, v.NEW) for a in df["archive_id"]])

    folder = setup.home / "vaults" / vault
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"inventory-{now:%Y%m%dT%H%M%SZ}-{job.job_id[:8]}.csv"
    out = df[
        [
            "vault",
            "archive_id",
            "description",
            "size",
            "creation_date",
            "sha256_tree_hash",
            "name",
            "naming_reason",
            "destination_key",
            "status",
        ]
    ].rename(columns={"sha256_tree_hash": "tree_hash"})
    tmp = path.with_name(path.name + ".part")
    out.to_csv(tmp, index=False)
    tmp.replace(path)

    summary = vault_inventory.inventory_summary(df)
    counts = {r: 0 for r in vault_names.REASONS}
    for reason in reasons:
        counts[reason] = counts.get(reason, 0) + 1
    result = {
        "archives": summary["archives"],
        "bytes": summary["bytes"],
        "oldest": summary["oldest"],
        "newest": summary["newest"],
        "new_archives": new,
        "reasons": counts,
        "path": str(path),
        "inventory_date": df.attrs.get("inventory_date"),
        "overrides": setup.overrides_source,
        "message": f"inventory of job {job.job_id} loaded: {summary['archives']} archive(s), {new} new",
    }
    store.update_job(job.job_id, loaded_at=now, result=result)
    store.record_progress(vault, run_id=run_id, at=now, bytes_transferred=0)
    log.info("vault %s: %s", vault, result["message"])
    loaded = store.job(job.job_id)
    if loaded is None:  # update_job just wrote it
        raise RuntimeError(f"vault {vault}: inventory job {job.job_id} left the catalog while it was loaded")
    return InventoryResult.from_job(loaded)
