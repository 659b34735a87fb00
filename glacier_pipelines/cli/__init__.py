"""The ``glacier-pipelines`` console script: submit, process, report, restore, move, trash, vault, catalog, responses, demo.

Thin: parsing and printing here, one module per command group (process, archive, restore, moves, vault, catalog);
the work in runs/, flows/ and Dagster runs. The exit-status rule is in common.py.
"""

from __future__ import annotations

import argparse
import sys

from glacier_pipelines.cli.archive import audit, cmd_audit, cmd_report, cmd_responses, cmd_submit, cmd_trash, trash
from glacier_pipelines.cli.catalog import cmd_catalog
from glacier_pipelines.cli.common import (
    QUIET_LOGS,
    ConfigFault,
    TransientFault,
    check_bucket,
    check_tenant,
    classify as _classify,
    ensure_dagster_home,
    log_path,
    log_unexpected as _log_unexpected,
    one_line as _one_line,
)
from glacier_pipelines.cli.moves import cmd_move, move
from glacier_pipelines.cli.process import cmd_process
from glacier_pipelines.cli.restore import cmd_restore
from glacier_pipelines.cli.vault import cmd_vault, vault_migrate
from glacier_pipelines.runs.requests import submit
from glacier_pipelines.settings import load as load_settings

__all__ = [
    "QUIET_LOGS",
    "ConfigFault",
    "TransientFault",
    "audit",
    "check_bucket",
    "check_tenant",
    "ensure_dagster_home",
    "log_path",
    "main",
    "move",
    "submit",
    "trash",
    "vault_migrate",
]


def cmd_demo(args: argparse.Namespace) -> int:
    from glacier_pipelines.demo import run_demo

    return run_demo(as_json=args.json)


# One handler per subcommand; each returns the exit status: 0 all done, 1 a run or an item failed (or a transient
# fault: the work stays for a later pass), 2 refused input or configuration. main turns exceptions into the same
# statuses (common.classify) with one line on stderr; an unexpected one is logged in full (log_path()) and exits 1.
_COMMANDS = {
    "submit": cmd_submit,
    "process": cmd_process,
    "report": cmd_report,
    "vault": cmd_vault,
    "catalog": cmd_catalog,
    "restore": cmd_restore,
    "audit": cmd_audit,
    "move": cmd_move,
    "trash": cmd_trash,
    "untrash": cmd_trash,
    "responses": cmd_responses,
    "demo": cmd_demo,
}


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand and its options (README: The CLI)."""
    parser = argparse.ArgumentParser(prog="glacier-pipelines", description="Archive files into S3 Glacier storage classes with Dagster.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("submit", help="put storage requests (JSON lines) on the request transport")
    p.add_argument("requests", help="a .jsonl file, one request per line ('-' for stdin)")
    p = sub.add_parser("process", help="one full pass through Dagster for all (or one) tenants")
    p.add_argument("--tenant")
    p.add_argument("--close-packages", action="store_true", help="also close and upload every open small-file package now")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--submit",
        action="store_true",
        help="put the archive runs on the instance's run queue (the default while a Dagster daemon dequeues it)",
    )
    where.add_argument("--in-process", action="store_true", help="execute the archive runs here even while a Dagster daemon runs")
    p.add_argument("--no-wait", action="store_true", help="with a run queue: return once the runs are queued")
    p.add_argument("--wait-minutes", type=float, default=60.0, help="with a run queue: how long to watch the queued runs (default 60)")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("vault", help="legacy S3 Glacier vaults")
    vault_sub = p.add_subparsers(dest="vault_command", required=True)
    m = vault_sub.add_parser("migrate", help="copy every archive of a vault into S3, tree-hash verified (the vault is only read)")
    m.add_argument("--vault", required=True)
    m.add_argument("--bucket")
    m.add_argument("--storage-class")
    m.add_argument("--prefix")
    m.add_argument("--wait", action="store_true", help="poll until every archive is transferred, failed or skipped")
    m.add_argument("--poll-seconds", type=float, default=300.0)
    m.add_argument("--timeout-hours", type=float, default=96.0)
    m.add_argument("--json", action="store_true")
    m = vault_sub.add_parser("status", help="where a vault copy stands, from the catalog (no run, nothing asked of Glacier)")
    m.add_argument("--vault", required=True)
    m.add_argument("--json", action="store_true")
    p = sub.add_parser("catalog", help="catalog maintenance")
    p.add_argument(
        "action",
        choices=["rebuild", "upgrade"],
        help="rebuild: recreate the catalog from the bucket's objects and package manifests; "
        "upgrade: bring the catalog's schema (GLACIER_CATALOG_URL) to this release's (Alembic)",
    )
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("report", help="per-request status and stored object from the catalog")
    p.add_argument("--tenant")
    p.add_argument("--json", action="store_true")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--restores", action="store_true", help="restore requests, one entry per file")
    what.add_argument("--costs", action="store_true", help="archive cost per month and estimated restore costs per tenant")
    p = sub.add_parser("restore", help="ask for archived files back (a Glacier restore) and a download link")
    p.add_argument("--tenant", required=True)
    p.add_argument("--request-id", action="append", help="the storage request id of a file (repeatable)")
    p.add_argument("--checksum", action="append", help="a file's checksum, in any algorithm the catalog knows (repeatable)")
    p.add_argument("--url", action="append", help="a stored object URL s3://bucket/key (repeatable)")
    p.add_argument("--days", type=int, required=True, help="how long the restored copy stays readable")
    p.add_argument("--tier", default="Bulk", help="Bulk (default), Standard or Expedited (not for DEEP_ARCHIVE)")
    p.add_argument("--requester", required=True, help="email address told when the files are ready")
    p.add_argument("--note")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("audit", help="the story of one file: catalog facts, Dagster runs, materializations, checks, restores")
    p.add_argument("request_id")
    p.add_argument("--tenant", help="the tenant the request belongs to (needed only when several tenants use the id)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p = sub.add_parser("move", help="move objects already in S3 into an archive class by server-side copies (no download)")
    p.add_argument("url", nargs="?", help="s3://bucket/key (one object) or s3://bucket/prefix/ (every object under it)")
    p.add_argument("--tenant", required=True)
    p.add_argument(
        "--list",
        action="store_true",
        help="list the tenant's moves the catalog records (under URL if given), with the run that copied each; moves nothing",
    )
    p.add_argument("--storage-class", help="target class (default: GLACIER_STORAGE_CLASS)")
    p.add_argument(
        "--verify",
        choices=["trust-s3", "stream"],
        default="trust-s3",
        help="trust-s3 (default): record S3's own checksum; stream: read each object once and compare",
    )
    p.add_argument("--checksum", help="ALGORITHM:HEX the object must have (one object only), e.g. MD5:9e10...")
    p.add_argument("--to-archive", action="store_true", help="copy onto the tenant's archive key and delete the source (default: in place)")
    p.add_argument("--max-objects", type=int, default=100_000, help="objects copied in this run; the rest wait for the next")
    p.add_argument("--dry-run", action="store_true", help="list and print the estimated cost only")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser(
        "trash", help="soft-delete archived files until their grace period ends (GLACIER_TRASH_GRACE_DAYS), then delete them"
    )
    p.add_argument("request_ids", nargs="+", metavar="REQUEST_ID")
    p.add_argument("--tenant", required=True)
    p.add_argument("--verify", choices=["trust-s3", "stream"], default="trust-s3")
    p.add_argument("--grace-days", type=float, help="days before the file is deleted (default: GLACIER_TRASH_GRACE_DAYS)")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("untrash", help="take trashed files back before their grace period ends")
    p.add_argument("request_ids", nargs="+", metavar="REQUEST_ID")
    p.add_argument("--tenant", required=True)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("responses", help="read (and consume) worker responses from the transport")
    p.add_argument("--max", type=int, default=1000)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("demo", help="archive sample files into a local S3 Glacier emulator, end to end")
    p.add_argument("--json", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    from glacier_pipelines.core.transfer import limit_malloc_arenas

    limit_malloc_arenas()  # before any thread starts (see its docstring)
    args = build_parser().parse_args(argv)
    try:
        load_settings()  # every variable validated once, before anything runs: a bad value is one clear SettingsError
        return _COMMANDS[args.command](args)
    except Exception as exc:  # noqa: BLE001 - every fault ends as one line and an exit status (README: Exit statuses)
        status, message = _classify(exc)
        if status is None:
            where = _log_unexpected(args.command, exc)
            status, message = 1, (f"unexpected error {type(exc).__name__}: {_one_line(exc)} (full traceback in {where})")
        print(f"glacier-pipelines {args.command}: {message}", file=sys.stderr)
        return status
