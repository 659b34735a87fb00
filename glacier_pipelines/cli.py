"""The ``glacier-pipelines`` console script: submit, process, report, responses, demo.

Thin: parsing and printing here, the work in flows/ and in Dagster runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from glacier_pipelines.core.transport import TransportError
from glacier_pipelines.settings import Settings

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def ensure_dagster_home(settings: Settings) -> Path:
    """Use $DAGSTER_HOME, or an instance under $GLACIER_HOME/dagster (SQLite, telemetry off)."""
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"])
    home = settings.home / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def process(tenant: str | None = None, *, progress=_progress) -> dict[str, Any]:
    """Drain the transport, run archive_job for every tenant with work (one batch per run), publish responses."""
    import dagster as dg

    from glacier_pipelines.definitions import defs
    from glacier_pipelines.defs.intake.sensors import WORKER_ID
    from glacier_pipelines.defs.partitions import tenants as tenants_partitions
    from glacier_pipelines.flows import intake

    settings = Settings.from_env()
    ensure_dagster_home(settings)
    resources = defs.resources
    catalog = resources["catalog"].get()
    with resources["request_transport"].transport() as transport:
        received = intake.drain_requests(transport, catalog, max_messages=10**9, max_seconds=3600.0,
                                         allowed_tenants=resources["request_transport"].allowed_tenants())
    progress(f"intake: {received.new} new request(s), {received.duplicates} duplicate(s), {received.invalid} invalid")
    job = defs.resolve_job_def("archive_job")
    runs = []
    with dg.DagsterInstance.get() as instance:
        for name in catalog.tenants_with_work():
            if not name or (tenant is not None and name != tenant):
                continue
            if not instance.has_dynamic_partition(tenants_partitions.name, name):
                instance.add_dynamic_partitions(tenants_partitions.name, [name])
            while True:  # one batch per run; a tenant with more pending than a batch gets several runs
                progress(f"tenant {name}: archiving...")
                result = job.execute_in_process(partition_key=name, instance=instance, raise_on_error=False,
                                                run_config=QUIET_LOGS, tags={"glacier/tenant": name})
                counts = {m.asset_key.to_user_string(): {k: v.value for k, v in m.materialization.metadata.items()
                                                         if k in ("requests", "verified", "stored", "deduplicated", "failed")}
                          for m in result.get_asset_materialization_events()}
                checks = result.get_asset_check_evaluations()
                runs.append({"tenant": name, "runId": result.run_id, "success": result.success, "assets": counts,
                             "checksPassed": bool(checks) and all(c.passed for c in checks)})
                progress(f"tenant {name}: run {result.run_id[:8]} {'succeeded' if result.success else 'FAILED'}: "
                         + "; ".join(f"{k} {v}" for k, v in counts.items()))
                claimed = counts.get("ingest_batch", {}).get("requests", 0)
                if not result.success or not claimed or not catalog.status_counts(name).get("PENDING"):
                    break
    with resources["request_transport"].transport() as transport:
        published = intake.publish_responses(transport, catalog, worker_id=WORKER_ID)
    report = catalog.report(tenant)
    return {
        "intake": {"new": received.new, "duplicates": received.duplicates, "invalid": received.invalid},
        "runs": runs,
        "responsesPublished": published,
        "statuses": dict(Counter(r["status"] for r in report)),
        "requests": report,
    }


def submit(path: str) -> tuple[int, list[str]]:
    """Publish each JSON line of ``path`` ('-' for stdin) on the request transport."""
    from glacier_pipelines.core.transport import submission_to_message
    from glacier_pipelines.resources import resources_from_env

    stream = sys.stdin if path == "-" else open(path, encoding="utf-8")
    sent, errors = 0, []
    with stream, resources_from_env()["request_transport"].transport() as transport:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(f"line {number}: not valid JSON ({exc.msg}, column {exc.colno}); not submitted")
                continue
            if not isinstance(obj, dict):
                errors.append(f"line {number}: must be a JSON object; not submitted")
                continue
            transport.publish_request(*submission_to_message(obj))
            sent += 1
    return sent, errors


def _print_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        print("no requests")
        return
    header = ("tenant", "requestId", "status", "size", "image", "storedFileUrl / messages")
    lines = [header]
    for r in rows:
        image = f"{r['widthInPx']}x{r['heightInPx']}" if r.get("widthInPx") is not None else ""
        where = r["storedFileUrl"] or "; ".join(r["messages"])
        lines.append((r["tenant"], r["requestId"], r["status"], str(r["fileSizeInBytes"] or ""), image, where[:110]))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header) - 1)]
    for line in lines:
        print("  ".join(str(v).ljust(w) for v, w in zip(line[:-1], widths)) + "  " + line[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glacier-pipelines", description="Archive files into S3 Glacier storage classes with Dagster.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("submit", help="put storage requests (JSON lines) on the request transport")
    p.add_argument("requests", help="a .jsonl file, one request per line ('-' for stdin)")
    p = sub.add_parser("process", help="one full pass through Dagster for all (or one) tenants")
    p.add_argument("--tenant")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("report", help="per-request status and stored object from the catalog")
    p.add_argument("--tenant")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("responses", help="read (and consume) worker responses from the transport")
    p.add_argument("--max", type=int, default=1000)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("demo", help="archive sample files into a local S3 Glacier emulator, end to end")
    p.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    try:
        if args.command == "submit":
            sent, errors = submit(args.requests)
            for e in errors:
                print(e, file=sys.stderr)
            print(f"submitted {sent} request(s)" + (f"; {len(errors)} line(s) refused" if errors else ""))
            return 1 if errors else 0
        if args.command == "process":
            summary = process(args.tenant)
            if args.json:
                print(json.dumps(summary, indent=2, default=str))
            else:
                _print_table(summary["requests"])
                print(f"\n{len(summary['runs'])} run(s); statuses: {summary['statuses']}; responses published: {summary['responsesPublished']}")
            return 0 if all(r["success"] for r in summary["runs"]) else 1
        if args.command == "report":
            from glacier_pipelines.resources import resources_from_env

            rows = resources_from_env()["catalog"].get().report(args.tenant)
            if args.json:
                print(json.dumps(rows, indent=2, default=str))
            else:
                _print_table(rows)
            return 0
        if args.command == "responses":
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
        if args.command == "demo":
            from glacier_pipelines.demo import run_demo

            return run_demo(as_json=args.json)
    except (ValueError, OSError, TransportError) as exc:
        print(f"glacier-pipelines {args.command}: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
