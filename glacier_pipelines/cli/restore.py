"""``glacier-pipelines restore``: ask for archived files back (runs/requests.py), printed per file or --json."""

from __future__ import annotations

import argparse
import json
import sys

from glacier_pipelines.runs.requests import restore


def cmd_restore(args: argparse.Namespace) -> int:
    """0 all asked for; 2 every file refused (refused input, like move); 1 some refused or failed, or the run failed."""
    summary = restore(
        args.tenant,
        days=args.days,
        requester=args.requester,
        tier=args.tier,
        request_ids=args.request_id or (),
        checksums=args.checksum or (),
        urls=args.url or (),
        note=args.note,
    )  # a RestoreRequestError: exit 2
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(f"restore {summary['restoreId']} for tenant {summary['tenant']} ({summary['tier']}, {summary['days']} days):")
        for row in summary["files"]:
            cost = f"${row['estimatedCostUsd']:.4f}" if row["estimatedCostUsd"] is not None else "no cost"
            print(f"  {row['status']:<11} {row['storedFileUrl'] or '-'}  {cost}  {'; '.join(row['messages'])}")
    if summary["requested"] and summary["refused"] == summary["requested"]:
        print(f"glacier-pipelines restore: all {summary['refused']} file(s) refused; nothing to restore", file=sys.stderr)
        return 2  # refused input, like move
    failed = summary["refused"] or any(row["status"] == "FAILED" for row in summary["files"])
    return 0 if summary["runSuccess"] and not failed else 1
