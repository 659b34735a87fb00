"""``vault migrate`` without Dagster: inventory, retrievals and transfers, pass after pass."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from glacier_pipelines.catalog import claims as cl
from glacier_pipelines.flows.vault import ledger
from glacier_pipelines.flows.vault.inventory import take_inventory
from glacier_pipelines.flows.vault.reporting import migration_state, vault_report
from glacier_pipelines.flows.vault.retrievals import request_retrievals
from glacier_pipelines.flows.vault.setup import VaultSetup, _mib, check_vault_name
from glacier_pipelines.flows.vault.transfers import transfer_archives


def migrate(
    setup: VaultSetup,
    vault: str,
    *,
    wait: bool,
    poll_seconds: float = 300.0,
    timeout_seconds: float = 7 * 86400.0,
    progress: Callable[[str], Any] = print,
    refresh_inventory: bool = False,
    run_id: str | None = None,
) -> list[dict[str, Any]]:
    """Drive inventory -> retrievals -> transfers for one vault; returns :func:`vault_report`.

    Without ``wait`` one pass is made (jobs Glacier has not finished are left for the next
    call). With ``wait`` passes repeat every ``poll_seconds`` until every archive is DONE,
    FAILED or SKIPPED, or ``timeout_seconds`` have passed (the report then shows the pending
    statuses). Progress lines go to ``progress``. Every step acts as one run (``run_id``, or one made
    up), which the report names for each archive it copied; the vault ledger is written after each pass.
    """
    check_vault_name(setup, vault)
    run = run_id or cl.local_run_id()
    deadline = time.monotonic() + timeout_seconds
    first = True
    while True:
        inventory = take_inventory(setup, vault, refresh=refresh_inventory and first, run_id=run)
        first = False
        progress(f"{vault}: {inventory.message}")
        if inventory.state == "loaded":
            r = request_retrievals(setup, vault, run_id=run)
            pacing = " (daily quota reached)" if r.quota_limited else " (job limit per run reached)" if r.rate_limited else ""
            progress(
                f"{vault}: {len(r.started)} retrieval job(s) started ({_mib(r.bytes_started)}){pacing}, "
                f"{len(r.reinitiated)} re-requested, {len(r.skipped)} skipped, {len(r.already_present)} already in S3"
            )
            t = transfer_archives(setup, vault, run_id=run)
            others = Counter(other for _, other in t.by_other_runs)
            progress(
                f"{vault}: {len(t.done)} archive(s) copied by this run {run} ({_mib(t.bytes_transferred)})"
                + "".join(f", {n} by run {other}" for other, n in sorted(others.items()))
                + f", {len(t.failed)} failed, {len(t.interrupted)} interrupted"
                + (f", {len(t.left_to_others)} being copied by other runs" if t.left_to_others else "")
            )
        ledger.record(setup, vault)
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
