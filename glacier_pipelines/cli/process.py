"""``glacier-pipelines process``: one pass through Dagster (runs/process.py), printed as a table or --json."""

from __future__ import annotations

import argparse
import json
import sys

from glacier_pipelines.cli.common import print_table
from glacier_pipelines.runs.process import process


def cmd_process(args: argparse.Namespace) -> int:
    """0 every run succeeded; 1 a run failed, or the broker was unreachable (the requests stay queued)."""
    mode = "submit" if args.submit else "in-process" if args.in_process else "auto"
    summary = process(args.tenant, close_packages=args.close_packages, mode=mode, wait=not args.no_wait, wait_minutes=args.wait_minutes)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print_table(summary["requests"])
        print(f"\n{len(summary['runs'])} run(s); statuses: {summary['statuses']}; responses published: {summary['responsesPublished']}")
    if summary.get("brokerUnreachable"):
        print(f"glacier-pipelines process: {summary['brokerUnreachable']}; the requests stay queued for the next pass", file=sys.stderr)
        return 1
    return 0 if all(r["success"] for r in summary["runs"] + summary["restoreRuns"]) else 1
