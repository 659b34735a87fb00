"""``submit``, ``report``, ``audit``, ``trash``/``untrash`` and ``responses``: the archive's requests in and out."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from glacier_pipelines.cli.common import ensure_dagster_home, print_table
from glacier_pipelines.cli.moves import move_setup, print_moves
from glacier_pipelines.runs.requests import submit
from glacier_pipelines.settings import Settings


def audit(request_id: str, tenant: str | None = None) -> dict[str, Any]:
    """The story of one file from the catalog and the Dagster instance's event log ($DAGSTER_HOME)."""
    import dagster as dg

    from glacier_pipelines.flows.audit import audit as audit_story
    from glacier_pipelines.resources import resources_from_env

    ensure_dagster_home(Settings.from_env())
    with dg.DagsterInstance.get() as instance:
        return audit_story(resources_from_env()["catalog"].get(), instance, request_id, tenant)


def trash(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Soft-delete archived files by request id (``trash``), or take them back before their deadline (``untrash``): flows/trash.py."""
    from datetime import timedelta

    from glacier_pipelines.core.moves import MoveError
    from glacier_pipelines.flows import trash as trash_flow

    setup, r = move_setup()
    bin_setup = r["archive_store"].trash_setup(r["catalog"], move=setup, pricing=r["lifecycle"].pricing())
    if getattr(args, "grace_days", None) is not None:
        bin_setup.grace = timedelta(days=args.grace_days)
    out = []
    for request_id in args.request_ids:
        try:
            if args.command == "untrash":
                out.append(trash_flow.untrash(bin_setup, args.tenant, request_id))
            else:
                out.append(trash_flow.trash(bin_setup, args.tenant, request_id, verification=args.verify))
        except MoveError as exc:
            out.append({"requestId": request_id, "status": "FAILED", "refused": True, "messages": [str(exc)]})
    return out


def cmd_report(args: argparse.Namespace) -> int:
    from glacier_pipelines.resources import resources_from_env

    r = resources_from_env()
    if args.restores:
        from glacier_pipelines.flows import restore as restore_flow

        rows = restore_flow.report_rows(r["restore"].setup(r["catalog"], r["archive_store"]), args.tenant)
        if args.json:
            print(json.dumps(rows, indent=2, default=str))
        else:
            for row in rows:
                print(
                    f"{row['restoreId'][:8]}  {row['tenant']:<12} {row['status']:<11} {row['tier']:<9} {row['storedFileUrl'] or '-'}  "
                    f"{'; '.join(row['messages'])}"
                )
        return 0
    if args.costs:
        from glacier_pipelines.flows import costs

        table = costs.cost_table(r["catalog"].get(), r["restore"].pricing(), args.tenant)
        if args.json:
            print(table.to_json(orient="records", indent=2))
        else:
            print(table.to_string(index=False) if not table.empty else "No costs yet.")
        return 0
    rows = r["catalog"].get().report(args.tenant)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        print_table(rows)
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    sent, errors = submit(args.requests)
    for e in errors:
        print(e, file=sys.stderr)
    print(f"submitted {sent} request(s)" + (f"; {len(errors)} line(s) refused" if errors else ""))
    if errors and not sent:
        return 2  # every line refused: refused input
    return 1 if errors else 0


def cmd_audit(args: argparse.Namespace) -> int:
    from glacier_pipelines.flows.audit import render

    story = audit(args.request_id, args.tenant)
    print(json.dumps(story, indent=2, default=str) if args.json else render(story))
    return 0


def cmd_trash(args: argparse.Namespace) -> int:
    rows = trash(args)  # a MoveError reaches main: exit 2 with its reason
    refused = [r.pop("refused", False) for r in rows]  # a MoveError per id: kept out of the printed rows
    print(json.dumps(rows, indent=2, default=str)) if args.json else print_moves(rows)
    if rows and all(refused):
        return 2  # every request id refused (unknown, another tenant's, already trashed): refused input
    return 1 if any(r["status"] == "FAILED" for r in rows) else 0


def cmd_responses(args: argparse.Namespace) -> int:
    from glacier_pipelines.resources import resources_from_env

    with resources_from_env()["request_transport"].transport() as transport:
        msgs = transport.read_responses(args.max)
    out = [{"headers": m.headers, "body": json.loads(m.body)} for m in msgs]
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for m in out:
            print(f"{m['body']['requestId']}: {m['body']['status']}")
    return 0
