"""``glacier-pipelines vault``: copy a legacy S3 Glacier vault into S3 (vault_job, ``migrate``), or where the copy stands (``status``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any

from glacier_pipelines.cli.common import QUIET_LOGS, ensure_dagster_home, one_line, to_stderr as _progress
from glacier_pipelines.settings import Settings


def vault_migrate(args: argparse.Namespace, *, progress=_progress, outcome: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run vault_job for one vault through Dagster; with --wait, again every --poll-seconds until nothing is left to do.

    A vault that does not exist raises VaultNotFound (a ValueError: exit 2) before any run. With --wait, a run failing
    with the same fault 3 times in a row raises RepeatedFault. ``outcome`` receives the last run's success and fault.
    """
    import time

    import dagster as dg

    from glacier_pipelines.definitions import build_defs
    from glacier_pipelines.flows import vault as vault_flow
    from glacier_pipelines.resources import ArchiveStoreResource, resources_from_env
    from glacier_pipelines.resources.vault import VaultResource

    settings = Settings.from_env()
    ensure_dagster_home(settings)
    r = resources_from_env()
    update = {k: v for k, v in {"bucket": args.bucket, "storage_class": (args.storage_class or "").upper()}.items() if v}
    if update:
        r["archive_store"] = ArchiveStoreResource(**{**r["archive_store"].model_dump(), **update})
    if args.prefix:
        r["vault"] = VaultResource(**{**r["vault"].model_dump(), "key_prefix": args.prefix.strip("/")})
    setup = r["vault"].setup(r["catalog"], r["archive_store"])
    vault_flow.require_vault(setup, args.vault, region=r["vault"].region_name)
    job = build_defs(r).resolve_job_def("vault_job")
    deadline = time.monotonic() + args.timeout_hours * 3600
    repeats = vault_flow.FaultRepeats(limit=3)
    outcome = {} if outcome is None else outcome
    with dg.DagsterInstance.get() as instance:
        if not instance.has_dynamic_partition("vaults", args.vault):
            instance.add_dynamic_partitions("vaults", [args.vault])
        while True:
            result = job.execute_in_process(
                partition_key=args.vault, instance=instance, raise_on_error=False, run_config=QUIET_LOGS, tags={"glacier/vault": args.vault}
            )
            faults = [
                f"{e.step_key}: {one_line(e.step_failure_data.error.message)}" if e.step_failure_data.error else str(e.step_key)
                for e in result.get_step_failure_events()
            ]
            fault = "; ".join(faults) or (None if result.success else f"run {result.run_id} failed")
            outcome.update(runSuccess=result.success, fault=fault, runId=result.run_id)
            state = vault_flow.migration_state(setup, args.vault)
            progress(
                f"vault {args.vault}: run {result.run_id[:8]} {'succeeded' if result.success else 'FAILED: ' + str(fault)}; "
                f"{json.dumps({k: v for k, v in state.items() if k != 'finished'}, default=str)}"
            )
            if args.wait and not state["finished"]:
                repeats.observe(fault)  # the same fault 3 runs in a row: RepeatedFault, exit 1
            if state["finished"] or not args.wait or time.monotonic() > deadline:
                break
            time.sleep(args.poll_seconds)
    return vault_flow.vault_report(setup, args.vault)


def vault_status(args: argparse.Namespace) -> int:
    """``vault status``: the inventory, archives and bytes per status, and each archive with the run that copied it."""
    from glacier_pipelines.flows import vault as vault_flow
    from glacier_pipelines.resources import resources_from_env

    r = resources_from_env()
    setup = r["vault"].setup(r["catalog"], r["archive_store"])
    vault_flow.check_vault_name(setup, args.vault)
    status: dict[str, Any] = {
        "state": vault_flow.migration_state(setup, args.vault),
        "archives": vault_flow.vault_report(setup, args.vault),
    }
    if args.json:
        print(json.dumps(status, indent=2, default=str))
        return 0
    for row in status["archives"]:
        print(
            f"{row['status']:<12} {row['sizeInBytes']:>14}  {row['destinationKey']}  {row['doneByRun'] or '-'}  "
            f"{'; '.join(row['messages'][-1:])}"
        )
    state = status["state"]
    by_run = Counter(row["doneByRun"] for row in status["archives"] if row["status"] == "DONE")
    print(
        f"\nvault {args.vault}: inventory {state['inventory']}; {dict((k, n) for k, n in state['archives'].items() if n)}; "
        + ", ".join(f"{n} copied by run {run}" for run, n in sorted(by_run.items(), key=lambda x: str(x[0])))
        + ("; finished" if state["finished"] else f"; {state['pending']} pending")
    )
    return 0


def cmd_vault(args: argparse.Namespace) -> int:
    from glacier_pipelines.flows.vault import RepeatedFault

    if args.vault_command == "status":
        return vault_status(args)
    outcome: dict[str, Any] = {}
    try:
        report = vault_migrate(args, outcome=outcome)  # a missing vault is a VaultNotFound (ValueError): exit 2
    except RepeatedFault as exc:
        print(f"glacier-pipelines vault migrate: {one_line(exc)}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        for row in report:
            print(f"{row['status']:<12} {row['sizeInBytes']:>14}  {row['destinationKey'] or '-'}  {'; '.join(row['messages'])}")
        counts = Counter(r["status"] for r in report)
        by_run = Counter(r.get("doneByRun") for r in report if r["status"] == "DONE")
        print(
            f"\n{len(report)} archive(s): {dict(counts)}"
            + "".join(f"; {n} copied by run {run}" for run, n in sorted(by_run.items(), key=lambda x: str(x[0])))
        )
    if not outcome.get("runSuccess", True):
        print(f"glacier-pipelines vault migrate: run {outcome.get('runId')} failed: {outcome.get('fault')}", file=sys.stderr)
        return 1
    return 1 if any(r["status"] == "FAILED" for r in report) else 0
