"""Where a vault copy stands: the per-archive report, progress, the time left, and which vaults a run would move on."""

from __future__ import annotations

import hashlib
import io
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from glacier_pipelines.catalog import vault_tables as v
from glacier_pipelines.flows.vault.setup import VaultSetup


def vault_report(setup: VaultSetup, vault: str) -> list[dict[str, Any]]:
    """One dict per archive of the vault, in creation order: what ``vault migrate --json`` and ``vault status --json`` print."""
    out = []
    for row in setup.store.archives(vault):
        out.append(
            {
                "archiveId": row.archive_id,
                "destinationKey": row.destination_key,
                "status": row.status,
                "sizeInBytes": row.size,
                "messages": row.messages,
                "creationDate": row.creation_date.isoformat(),
                "sha256TreeHash": row.tree_hash,
                "namingReason": row.naming_reason,
                "storedFileUrl": f"s3://{row.bucket or setup.bucket}/{row.destination_key}" if row.status == v.DONE else None,
                "doneByRun": row.run_id if row.status in v.TERMINAL else None,  # the run that copied it (or failed or skipped it)
            }
        )
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
        store.update_archive(
            row.pk,
            status=v.NEW,
            attempts=0,
            job_failures=0,
            upload_id=None,
            chunk_size=None,
            message="FAILED archive put back to NEW for another attempt",
        )
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
    out: dict[str, Any] = {
        "bytes_remaining": remaining,
        "bytes_per_second": None,
        "seconds": None,
        "quota_days": (remaining / setup.daily_bytes) if setup.daily_bytes else None,
    }
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
        "vault": vault,
        "inventory": inventory,
        "archives": {s: n for s, (n, _) in totals.items()},
        "bytes": {s: b for s, (_, b) in totals.items()},
        "pending": pending,
        "finished": inventory == "loaded" and pending == 0,
    }


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
        if (
            first is not None
            and setup.max_jobs > 0
            and (not setup.daily_bytes or used == 0 or used + first.size <= setup.daily_bytes or first.size == 0)
        ):
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
