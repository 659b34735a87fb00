"""``glacier-pipelines move``: server-side copies of objects already in S3 into an archive class (move_job), or ``--list``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, cast

from glacier_pipelines.cli.common import QUIET_LOGS, ensure_dagster_home, to_stderr as _progress
from glacier_pipelines.settings import Settings


def move_setup() -> tuple[Any, dict[str, Any]]:
    from glacier_pipelines.resources import resources_from_env
    from glacier_pipelines.resources.lifecycle import with_lifecycle

    import dagster as dg

    from glacier_pipelines.core.moves import MoveError

    r = with_lifecycle(resources_from_env())
    try:
        return r["lifecycle"].setup(r["catalog"], r["archive_store"]), r
    except dg.Failure as exc:  # a lifecycle declaration with problems: its message, not a traceback
        raise MoveError(exc.description or str(exc)) from None


def move(args: argparse.Namespace, *, progress=_progress) -> dict[str, Any]:
    """Estimate, then run move_job for the tenant: server-side copies of s3://... into the archive class."""
    import dagster as dg

    from glacier_pipelines.definitions import build_defs
    from glacier_pipelines.defs.partitions import tenants as tenants_partitions
    from glacier_pipelines.flows import moves as move_flow

    settings = Settings.from_env()
    ensure_dagster_home(settings)
    setup, r = move_setup()
    config = {
        "source": args.url,
        "storage_class": (args.storage_class or "").upper(),
        "verification": args.verify,
        "destination": "archive" if args.to_archive else "in-place",
        "checksum": args.checksum or "",
        "max_objects": args.max_objects,
    }
    request = move_flow.MoveRequest(
        tenant=args.tenant,
        url=args.url,
        storage_class=config["storage_class"] or None,
        verification=args.verify,
        destination=config["destination"],
        checksum=args.checksum,
        max_objects=args.max_objects,
        dry_run=True,
    )
    planned = move_flow.move(setup, request, progress=progress)  # refusals surface here, before any run
    for line in (planned.estimate or {}).get("lines", []):
        progress(f"  ${line['usd']:.6f}  {line['item']}" if line["usd"] is not None else f"  {line['item']}")
    if args.dry_run:
        return {**planned.as_dict(), "dryRun": True, "runId": None, "runSuccess": True}
    with dg.DagsterInstance.get() as instance:
        partitions = cast(str, tenants_partitions.name)  # the stubs say Optional; it is named where defined
        if not instance.has_dynamic_partition(partitions, args.tenant):
            instance.add_dynamic_partitions(partitions, [args.tenant])
        result = (
            build_defs(r)
            .resolve_job_def("move_job")
            .execute_in_process(
                partition_key=args.tenant,
                instance=instance,
                raise_on_error=False,
                tags={"glacier/tenant": args.tenant},
                run_config={**QUIET_LOGS, "ops": {"server_side_archives": {"config": config}}},
            )
        )
    report: dict[str, Any] = {}
    for event in result.get_asset_materialization_events():
        report = cast(dict[str, Any], event.materialization.metadata["report"].value)  # a JSON metadata value
    for event in result.get_step_failure_events():
        data = event.step_failure_data.user_failure_data
        if data is not None and "report" in data.metadata:
            report = cast(dict[str, Any], data.metadata["report"].value)
        elif not report:
            report = {
                **planned.as_dict(),
                "objects": [],
                "error": event.step_failure_data.error.message.strip() if event.step_failure_data.error else "the move failed",
            }
    return {**report, "dryRun": False, "runId": result.run_id, "runSuccess": result.success}


def print_moves(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        where = row.get("destination") or "-"
        print(f"{row['status']:<8} {row.get('source') or row.get('requestId', '')} -> {where}  {'; '.join(row.get('messages', []))}")


def move_list(args: argparse.Namespace) -> int:
    """``move --list``: the moves the catalog records for the tenant, each with the run that copied it."""
    from glacier_pipelines.flows.move_ledger import listing

    setup, _ = move_setup()
    rows = listing(setup, args.tenant, args.url)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    for row in rows:
        print(
            f"{row['kind']:<6} {row['status']:<8} {row['source']} -> {row['destination']}  {row['storageClass']}  "
            f"copied by {row['copiedByRun'] or '-'}  {'; '.join(row['messages'][-1:])}"
        )
    print(f"\n{len(rows)} move(s)")
    return 0


def cmd_move(args: argparse.Namespace) -> int:
    if args.list:
        return move_list(args)
    if not args.url:
        raise ValueError("move: name the objects, s3://bucket/key or s3://bucket/prefix/ (or --list the moves recorded)")
    summary = move(args)  # a MoveError reaches main: exit 2 with its reason
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print_moves(summary.get("objects", []))
        if summary.get("error"):
            print(summary["error"], file=sys.stderr)
        others = {run: n for run, n in (summary.get("copiedByRun") or {}).items() if run != summary.get("runId")}
        print(
            f"\n{summary.get('moved', 0)} moved by this run"
            + "".join(f", {n} by run {run}" for run, n in sorted(others.items()))
            + (f", {summary['inOtherRuns']} being moved by other runs" if summary.get("inOtherRuns") else "")
            + f", {summary.get('skipped', 0)} skipped, {summary.get('failed', 0)} failed; "
            f"{summary.get('bytesMoved', 0):,} bytes; estimated cost ${(summary.get('estimate') or {}).get('total', 0.0):.6f}"
        )
    return 0 if summary["runSuccess"] else 1
