"""The ``glacier-pipelines`` console script: submit, process, report, restore, move, trash, responses, demo.

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
from glacier_pipelines.settings import Settings, load as load_settings

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class TransientFault(Exception):
    """Something the command needs is unreachable for now (S3, the broker, the catalog's server): exit status 1, work kept."""


class ConfigFault(ValueError):
    """A setting refused by the service it names (bucket, credentials): exit status 2, nothing touched."""


def ensure_dagster_home(settings: Settings) -> Path:
    """Use $DAGSTER_HOME, or an instance under $GLACIER_HOME/dagster (SQLite, telemetry off).

    A relative or missing $DAGSTER_HOME is a ValueError naming the variable (Dagster would raise a traceback).
    """
    if os.environ.get("DAGSTER_HOME"):
        given = Path(os.environ["DAGSTER_HOME"]).expanduser()
        if not given.is_absolute():
            raise ValueError(f"DAGSTER_HOME={os.environ['DAGSTER_HOME']!r} is relative: give an absolute path, "
                             "or unset DAGSTER_HOME to use $GLACIER_HOME/dagster")
        if not given.is_dir():
            raise ValueError(f"DAGSTER_HOME={str(given)!r} is not an existing folder: create it, "
                             "or unset DAGSTER_HOME to use $GLACIER_HOME/dagster")
        return given
    home = settings.home / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _current_defs(defs: Any = None) -> Any:
    """The Definitions built from the environment as it is now (the module-level ``defs`` froze it at first import)."""
    if defs is not None:
        return defs
    from glacier_pipelines.definitions import build_defs

    return build_defs()


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def check_tenant(tenant: str, allowed: tuple[str, ...] | list[str] = ()) -> str:
    """A tenant named on the command line, refused (ValueError) before it can become a Dagster partition."""
    from glacier_pipelines.core.keys import validate_tenant

    validate_tenant(tenant)  # InvalidKey is a ValueError
    if allowed and tenant not in allowed:
        raise ValueError(f"tenant {tenant!r} is not among the allowed tenants (GLACIER_TENANTS={','.join(allowed)})")
    return tenant


def check_bucket(store: Any) -> None:
    """One HeadBucket before any run: refused credentials or a missing bucket is a ConfigFault, an unreachable S3 a TransientFault."""
    import botocore.exceptions as bce

    bucket = store.bucket
    try:
        store.client().head_bucket(Bucket=bucket)
    except bce.NoCredentialsError:
        raise ConfigFault(f"no AWS credentials found for bucket {bucket!r}: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                          "or AWS_PROFILE; no request was touched") from None
    except bce.ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchBucket", "404", "NotFound") or status == 404:
            raise ConfigFault(f"bucket {bucket!r} does not exist: fix GLACIER_BUCKET (or create the bucket); "
                              "no request was touched") from None
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "Forbidden",
                    "InvalidClientTokenId", "ExpiredToken", "InvalidToken") or status in (401, 403):
            raise ConfigFault(f"S3 refused the AWS credentials for bucket {bucket!r} ({code or status}): fix the AWS credentials "
                              "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE) or GLACIER_BUCKET; no request was touched") from None
        if status is not None and status >= 500 or code in ("SlowDown", "ServiceUnavailable", "InternalError"):
            raise TransientFault(f"S3 answered {code or status} for bucket {bucket!r}; the requests stay pending "
                                 "for the next pass") from None
        raise ConfigFault(f"S3 refused bucket {bucket!r} ({code or status}: {error.get('Message', '')}): "
                          "check GLACIER_BUCKET and the AWS credentials; no request was touched") from None
    except (bce.EndpointConnectionError, bce.ConnectTimeoutError, bce.ReadTimeoutError, bce.ConnectionClosedError) as exc:
        raise TransientFault(f"S3 is unreachable ({type(exc).__name__}: {exc}); the requests stay pending for the next pass") from None


def process(tenant: str | None = None, *, close_packages: bool = False, progress=_progress, **options: Any) -> dict[str, Any]:
    """One pass through Dagster: drain the transport, run the planned archive runs, publish responses (cli_process.py).

    ``options``: ``mode`` ("auto", "submit", "in-process"), ``wait``, ``wait_minutes``.
    """
    from glacier_pipelines.cli_process import process as one_pass

    return one_pass(tenant, close_packages=close_packages, progress=progress, **options)


def _run_restore_job(instance: Any, tenant: str, run_config: dict[str, Any] | None = None, *, defs: Any = None) -> Any:
    from glacier_pipelines.defs.partitions import tenants as tenants_partitions

    defs = _current_defs(defs)

    if not instance.has_dynamic_partition(tenants_partitions.name, tenant):
        instance.add_dynamic_partitions(tenants_partitions.name, [tenant])
    config = {**QUIET_LOGS, **(run_config or {})}
    return defs.resolve_job_def("restore_job").execute_in_process(partition_key=tenant, instance=instance, raise_on_error=False,
                                                                   run_config=config, tags={"glacier/tenant": tenant})


def close_all_packages(tenant: str | None = None, *, progress=_progress, defs: Any = None) -> list[dict[str, Any]]:
    """Run package_job with close_all for every tenant that has an open package."""
    import dagster as dg

    from glacier_pipelines.catalog.packages import PackageStore

    defs = _current_defs(defs)
    catalog = defs.resources["catalog"].get()
    names = sorted({p["tenant"] for p in PackageStore(catalog).open_packages(tenant)})
    runs = []
    with dg.DagsterInstance.get() as instance:
        for name in names:
            result = defs.resolve_job_def("package_job").execute_in_process(
                partition_key=name, instance=instance, raise_on_error=False, tags={"glacier/tenant": name},
                run_config={**QUIET_LOGS, "ops": {"glacier_packages": {"config": {"close_all": True}}}})
            stored = {m.asset_key.to_user_string(): m.materialization.metadata.get("packages_stored") for m in result.get_asset_materialization_events()}
            checks = result.get_asset_check_evaluations()
            runs.append({"tenant": name, "runId": result.run_id, "success": result.success, "job": "package_job",
                         "checksPassed": bool(checks) and all(c.passed for c in checks)})
            progress(f"tenant {name}: packages closed, run {result.run_id[:8]} {'succeeded' if result.success else 'FAILED'} "
                     f"({stored.get('glacier_packages').value if stored.get('glacier_packages') else 0} stored)")
    return runs


def advance_restores(tenant: str | None = None, *, progress=_progress, defs: Any = None) -> list[dict[str, Any]]:
    """Read restore events (or poll where no queue is configured), then run restore_job for tenants with restore work."""
    import dagster as dg

    from glacier_pipelines.flows import restore as restore_flow
    from glacier_pipelines.flows.restore_events import drain_events

    defs = _current_defs(defs)
    r = defs.resources
    setup = r["restore"].setup(r["catalog"], r["archive_store"])
    if r["restore"].events_queue_url:
        seen = drain_events(setup, r["restore"].sqs(), r["restore"].events_queue_url)
        progress(f"restore events: {seen.events} applied, {seen.unknown} for unknown objects")
    else:
        checked, completed = restore_flow.poll(setup)
        if checked:
            progress(f"restores polled: {checked} checked, {completed} restored")
    runs = []
    with dg.DagsterInstance.get() as instance:
        for name in setup.store.tenants_with_work():
            if tenant is not None and name != tenant:
                continue
            result = _run_restore_job(instance, name, defs=defs)
            runs.append({"tenant": name, "runId": result.run_id, "success": result.success})
            progress(f"tenant {name}: restore run {result.run_id[:8]} {'succeeded' if result.success else 'FAILED'}")
    return runs


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
            result = job.execute_in_process(partition_key=args.vault, instance=instance, raise_on_error=False,
                                            run_config=QUIET_LOGS, tags={"glacier/vault": args.vault})
            faults = [f"{e.step_key}: {_one_line(e.step_failure_data.error.message)}" if e.step_failure_data.error else str(e.step_key)
                      for e in result.get_step_failure_events()]
            fault = "; ".join(faults) or (None if result.success else f"run {result.run_id} failed")
            outcome.update(runSuccess=result.success, fault=fault, runId=result.run_id)
            state = vault_flow.migration_state(setup, args.vault)
            progress(f"vault {args.vault}: run {result.run_id[:8]} {'succeeded' if result.success else 'FAILED: ' + str(fault)}; "
                     f"{json.dumps({k: v for k, v in state.items() if k != 'finished'}, default=str)}")
            if args.wait and not state["finished"]:
                repeats.observe(fault)  # the same fault 3 runs in a row: RepeatedFault, exit 1
            if state["finished"] or not args.wait or time.monotonic() > deadline:
                break
            time.sleep(args.poll_seconds)
    return vault_flow.vault_report(setup, args.vault)


def restore(args: argparse.Namespace) -> dict[str, Any]:
    """Record a restore request, then run restore_job for its tenant (start restores, deliver what is back)."""
    import dagster as dg

    from glacier_pipelines.core.restores import parse_restore_request
    from glacier_pipelines.flows import restore as restore_flow

    settings = Settings.from_env()
    ensure_dagster_home(settings)
    defs = _current_defs()
    files = ([{"requestId": x} for x in args.request_id or []] + [{"checksum": x} for x in args.checksum or []]
             + [{"url": x} for x in args.url or []])
    data = {"tenant": args.tenant, "files": files, "days": args.days, "tier": args.tier, "requester": args.requester,
            **({"note": args.note} if args.note else {})}
    r = defs.resources
    request = parse_restore_request(data, max_days=r["restore"].max_days)
    setup = r["restore"].setup(r["catalog"], r["archive_store"])
    summary = restore_flow.submit(setup, request)
    refused = sum(1 for f in summary["files"] if f["status"] == "REFUSED")
    with dg.DagsterInstance.get() as instance:
        result = _run_restore_job(instance, request.tenant, defs=defs)
    rows = [row for row in restore_flow.report_rows(setup, request.tenant) if row["restoreId"] == summary["restoreId"]]
    return {**summary, "runId": result.run_id, "runSuccess": result.success, "files": rows,
            "requested": len(summary["files"]), "refused": refused}


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


def audit(request_id: str, tenant: str | None = None) -> dict[str, Any]:
    """The story of one file from the catalog and the Dagster instance's event log ($DAGSTER_HOME)."""
    import dagster as dg

    from glacier_pipelines.flows.audit import audit as audit_story
    from glacier_pipelines.resources import resources_from_env

    ensure_dagster_home(Settings.from_env())
    with dg.DagsterInstance.get() as instance:
        return audit_story(resources_from_env()["catalog"].get(), instance, request_id, tenant)


def _move_setup() -> tuple[Any, dict[str, Any]]:
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
    setup, r = _move_setup()
    config = {"source": args.url, "storage_class": (args.storage_class or "").upper(), "verification": args.verify,
              "destination": "archive" if args.to_archive else "in-place", "checksum": args.checksum or "",
              "max_objects": args.max_objects}
    request = move_flow.MoveRequest(tenant=args.tenant, url=args.url, storage_class=config["storage_class"] or None,
                                    verification=args.verify, destination=config["destination"], checksum=args.checksum,
                                    max_objects=args.max_objects, dry_run=True)
    planned = move_flow.move(setup, request, progress=progress)  # refusals surface here, before any run
    for line in (planned.estimate or {}).get("lines", []):
        progress(f"  ${line['usd']:.6f}  {line['item']}" if line["usd"] is not None else f"  {line['item']}")
    if args.dry_run:
        return {**planned.as_dict(), "dryRun": True, "runId": None, "runSuccess": True}
    with dg.DagsterInstance.get() as instance:
        if not instance.has_dynamic_partition(tenants_partitions.name, args.tenant):
            instance.add_dynamic_partitions(tenants_partitions.name, [args.tenant])
        result = build_defs(r).resolve_job_def("move_job").execute_in_process(
            partition_key=args.tenant, instance=instance, raise_on_error=False, tags={"glacier/tenant": args.tenant},
            run_config={**QUIET_LOGS, "ops": {"server_side_archives": {"config": config}}})
    report: dict[str, Any] = {}
    for event in result.get_asset_materialization_events():
        report = event.materialization.metadata["report"].value
    for event in result.get_step_failure_events():
        data = event.step_failure_data.user_failure_data
        if data is not None and "report" in data.metadata:
            report = data.metadata["report"].value
        elif not report:
            report = {**planned.as_dict(), "objects": [], "error": event.step_failure_data.error.message.strip()
                      if event.step_failure_data.error else "the move failed"}
    return {**report, "dryRun": False, "runId": result.run_id, "runSuccess": result.success}


def trash(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Soft-delete archived files by request id (``trash``), or take them back before their deadline (``untrash``): flows/trash.py."""
    from datetime import timedelta

    from glacier_pipelines.core.moves import MoveError
    from glacier_pipelines.flows import trash as trash_flow

    setup, r = _move_setup()
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


def _print_moves(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        where = row.get("destination") or "-"
        print(f"{row['status']:<8} {row.get('source') or row.get('requestId', '')} -> {where}  {'; '.join(row.get('messages', []))}")


def _report(args: argparse.Namespace) -> int:
    from glacier_pipelines.resources import resources_from_env

    r = resources_from_env()
    if args.restores:
        from glacier_pipelines.flows import restore as restore_flow

        rows = restore_flow.report_rows(r["restore"].setup(r["catalog"], r["archive_store"]), args.tenant)
        if args.json:
            print(json.dumps(rows, indent=2, default=str))
        else:
            for row in rows:
                print(f"{row['restoreId'][:8]}  {row['tenant']:<12} {row['status']:<11} {row['tier']:<9} {row['storedFileUrl'] or '-'}  "
                      f"{'; '.join(row['messages'])}")
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
        _print_table(rows)
    return 0


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


def _cmd_submit(args: argparse.Namespace) -> int:
    sent, errors = submit(args.requests)
    for e in errors:
        print(e, file=sys.stderr)
    print(f"submitted {sent} request(s)" + (f"; {len(errors)} line(s) refused" if errors else ""))
    if errors and not sent:
        return 2  # every line refused: refused input
    return 1 if errors else 0


def _cmd_process(args: argparse.Namespace) -> int:
    mode = "submit" if args.submit else "in-process" if args.in_process else "auto"
    summary = process(args.tenant, close_packages=args.close_packages, mode=mode, wait=not args.no_wait, wait_minutes=args.wait_minutes)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        _print_table(summary["requests"])
        print(f"\n{len(summary['runs'])} run(s); statuses: {summary['statuses']}; responses published: {summary['responsesPublished']}")
    if summary.get("brokerUnreachable"):
        print(f"glacier-pipelines process: {summary['brokerUnreachable']}; the requests stay queued for the next pass",
              file=sys.stderr)
        return 1
    return 0 if all(r["success"] for r in summary["runs"] + summary["restoreRuns"]) else 1


def _vault_status(args: argparse.Namespace) -> int:
    """``vault status``: the inventory, archives and bytes per status, and each archive with the run that copied it."""
    from glacier_pipelines.flows import vault as vault_flow
    from glacier_pipelines.resources import resources_from_env

    r = resources_from_env()
    setup = r["vault"].setup(r["catalog"], r["archive_store"])
    vault_flow.check_vault_name(setup, args.vault)
    status = {"state": vault_flow.migration_state(setup, args.vault), "archives": vault_flow.vault_report(setup, args.vault)}
    if args.json:
        print(json.dumps(status, indent=2, default=str))
        return 0
    for row in status["archives"]:
        print(f"{row['status']:<12} {row['sizeInBytes']:>14}  {row['destinationKey']}  {row['doneByRun'] or '-'}  "
              f"{'; '.join(row['messages'][-1:])}")
    state = status["state"]
    by_run = Counter(row["doneByRun"] for row in status["archives"] if row["status"] == "DONE")
    print(f"\nvault {args.vault}: inventory {state['inventory']}; {dict((k, n) for k, n in state['archives'].items() if n)}; "
          + ", ".join(f"{n} copied by run {run}" for run, n in sorted(by_run.items(), key=lambda x: str(x[0])))
          + ("; finished" if state["finished"] else f"; {state['pending']} pending"))
    return 0


def _cmd_vault(args: argparse.Namespace) -> int:
    from glacier_pipelines.flows.vault import RepeatedFault

    if args.vault_command == "status":
        return _vault_status(args)
    outcome: dict[str, Any] = {}
    try:
        report = vault_migrate(args, outcome=outcome)  # a missing vault is a VaultNotFound (ValueError): exit 2
    except RepeatedFault as exc:
        print(f"glacier-pipelines vault migrate: {_one_line(exc)}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        for row in report:
            print(f"{row['status']:<12} {row['sizeInBytes']:>14}  {row['destinationKey'] or '-'}  {'; '.join(row['messages'])}")
        counts = Counter(r["status"] for r in report)
        by_run = Counter(r.get("doneByRun") for r in report if r["status"] == "DONE")
        print(f"\n{len(report)} archive(s): {dict(counts)}"
              + "".join(f"; {n} copied by run {run}" for run, n in sorted(by_run.items(), key=lambda x: str(x[0]))))
    if not outcome.get("runSuccess", True):
        print(f"glacier-pipelines vault migrate: run {outcome.get('runId')} failed: {outcome.get('fault')}", file=sys.stderr)
        return 1
    return 1 if any(r["status"] == "FAILED" for r in report) else 0


def _cmd_catalog(args: argparse.Namespace) -> int:
    if args.action == "upgrade":  # Alembic's upgrade to head; a bad or unreachable URL is a ValueError: exit 2, one line
        from glacier_pipelines.catalog import schema

        result = schema.upgrade(load_settings().resolved_catalog_url)
        print(json.dumps(vars(result)) if args.json else result.describe())
        return 0
    from glacier_pipelines.flows.rebuild import rebuild
    from glacier_pipelines.resources import resources_from_env

    r = resources_from_env()
    counts = rebuild(r["catalog"].get(), r["archive_store"].client(), r["archive_store"].bucket, r["archive_store"].key_prefix,
                     vault_prefix=r["vault"].key_prefix)
    print(json.dumps(counts) if args.json else
          f"rebuilt: {counts['manifests']} package manifest(s), {counts['members']} member request(s), {counts['objects']} standalone object(s), "
          f"{counts['ledger_requests']} request(s) from the ledger ({counts['unresolved']} naming an object the bucket lacks), "
          f"{counts['restores']} restore state(s), {counts['moves']} move(s), {counts.get('vault_archives', 0)} vault archive(s) "
          f"of {counts.get('vaults', 0)} vault(s)")
    return 0


def _cmd_restore(args: argparse.Namespace) -> int:
    summary = restore(args)  # a RestoreRequestError is a ValueError: main says what is wrong, exit 2
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


def _cmd_audit(args: argparse.Namespace) -> int:
    from glacier_pipelines.flows.audit import render

    story = audit(args.request_id, args.tenant)
    print(json.dumps(story, indent=2, default=str) if args.json else render(story))
    return 0


def _move_list(args: argparse.Namespace) -> int:
    """``move --list``: the moves the catalog records for the tenant, each with the run that copied it."""
    from glacier_pipelines.flows.move_ledger import listing

    setup, _ = _move_setup()
    rows = listing(setup, args.tenant, args.url)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    for row in rows:
        print(f"{row['kind']:<6} {row['status']:<8} {row['source']} -> {row['destination']}  {row['storageClass']}  "
              f"copied by {row['copiedByRun'] or '-'}  {'; '.join(row['messages'][-1:])}")
    print(f"\n{len(rows)} move(s)")
    return 0


def _cmd_move(args: argparse.Namespace) -> int:
    if args.list:
        return _move_list(args)
    if not args.url:
        raise ValueError("move: name the objects, s3://bucket/key or s3://bucket/prefix/ (or --list the moves recorded)")
    summary = move(args)  # a MoveError reaches main: exit 2 with its reason
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        _print_moves(summary.get("objects", []))
        if summary.get("error"):
            print(summary["error"], file=sys.stderr)
        others = {run: n for run, n in (summary.get("copiedByRun") or {}).items() if run != summary.get("runId")}
        print(f"\n{summary.get('moved', 0)} moved by this run" + "".join(f", {n} by run {run}" for run, n in sorted(others.items()))
              + (f", {summary['inOtherRuns']} being moved by other runs" if summary.get("inOtherRuns") else "")
              + f", {summary.get('skipped', 0)} skipped, {summary.get('failed', 0)} failed; "
              f"{summary.get('bytesMoved', 0):,} bytes; estimated cost ${(summary.get('estimate') or {}).get('total', 0.0):.6f}")
    return 0 if summary["runSuccess"] else 1


def _cmd_trash(args: argparse.Namespace) -> int:
    rows = trash(args)  # a MoveError reaches main: exit 2 with its reason
    refused = [r.pop("refused", False) for r in rows]  # a MoveError per id: kept out of the printed rows
    print(json.dumps(rows, indent=2, default=str)) if args.json else _print_moves(rows)
    if rows and all(refused):
        return 2  # every request id refused (unknown, another tenant's, already trashed): refused input
    return 1 if any(r["status"] == "FAILED" for r in rows) else 0


def _cmd_responses(args: argparse.Namespace) -> int:
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


def _cmd_demo(args: argparse.Namespace) -> int:
    from glacier_pipelines.demo import run_demo

    return run_demo(as_json=args.json)


# One handler per subcommand; each returns the exit status: 0 all done, 1 a run or an item failed (or a transient
# fault: the work stays for a later pass), 2 refused input or configuration. main turns exceptions into the same
# statuses (_classify) with one line on stderr; an unexpected one is logged in full (log_path()) and exits 1.
_COMMANDS = {
    "submit": _cmd_submit,
    "process": _cmd_process,
    "report": _report,
    "vault": _cmd_vault,
    "catalog": _cmd_catalog,
    "restore": _cmd_restore,
    "audit": _cmd_audit,
    "move": _cmd_move,
    "trash": _cmd_trash,
    "untrash": _cmd_trash,
    "responses": _cmd_responses,
    "demo": _cmd_demo,
}


def main(argv: list[str] | None = None) -> int:
    from glacier_pipelines.core.transfer import limit_malloc_arenas

    limit_malloc_arenas()  # before any thread starts (see its docstring)
    parser = argparse.ArgumentParser(prog="glacier-pipelines", description="Archive files into S3 Glacier storage classes with Dagster.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("submit", help="put storage requests (JSON lines) on the request transport")
    p.add_argument("requests", help="a .jsonl file, one request per line ('-' for stdin)")
    p = sub.add_parser("process", help="one full pass through Dagster for all (or one) tenants")
    p.add_argument("--tenant")
    p.add_argument("--close-packages", action="store_true", help="also close and upload every open small-file package now")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--submit", action="store_true",
                       help="put the archive runs on the instance's run queue (the default while a Dagster daemon dequeues it)")
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
    p.add_argument("action", choices=["rebuild", "upgrade"],
                   help="rebuild: recreate the catalog from the bucket's objects and package manifests; "
                        "upgrade: bring the catalog's schema (GLACIER_CATALOG_URL) to this release's (Alembic)")
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
    p.add_argument("--list", action="store_true",
                   help="list the tenant's moves the catalog records (under URL if given), with the run that copied each; moves nothing")
    p.add_argument("--storage-class", help="target class (default: GLACIER_STORAGE_CLASS)")
    p.add_argument("--verify", choices=["trust-s3", "stream"], default="trust-s3",
                   help="trust-s3 (default): record S3's own checksum; stream: read each object once and compare")
    p.add_argument("--checksum", help="ALGORITHM:HEX the object must have (one object only), e.g. MD5:9e10...")
    p.add_argument("--to-archive", action="store_true",
                   help="copy onto the tenant's archive key and delete the source (default: in place)")
    p.add_argument("--max-objects", type=int, default=100_000, help="objects copied in this run; the rest wait for the next")
    p.add_argument("--dry-run", action="store_true", help="list and print the estimated cost only")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("trash", help="soft-delete archived files until their grace period ends (GLACIER_TRASH_GRACE_DAYS), then delete them")
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
    args = parser.parse_args(argv)
    try:
        load_settings()  # every variable validated once, before anything runs: a bad value is one clear SettingsError
        return _COMMANDS[args.command](args)
    except Exception as exc:  # noqa: BLE001 - every fault ends as one line and an exit status (README: Exit statuses)
        status, message = _classify(exc)
        if status is None:
            where = _log_unexpected(args.command, exc)
            status, message = 1, (f"unexpected error {type(exc).__name__}: {_one_line(exc)} "
                                  f"(full traceback in {where})")
        print(f"glacier-pipelines {args.command}: {message}", file=sys.stderr)
        return status


def _one_line(exc: BaseException) -> str:
    """The message on one line: a SettingsError's lines (one per variable) joined with '; '."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    head, rest = lines[0], lines[1:]
    return head + (" " + "; ".join(rest) if rest else "")


def _classify(exc: BaseException) -> tuple[int | None, str]:
    """(exit status, one line) for a foreseeable fault; (None, "") for an unexpected one.

    2: refused input or configuration (ValueError: SettingsError, CatalogConfigError, TransportConfigError, ConfigFault;
    OSError such as a missing file; MoveError). 1: a transient fault, the work stays for a later pass (TransientFault,
    TransportError, CatalogUnavailable, a lost database connection, S3 unreachable).
    """
    import botocore.exceptions as bce
    import sqlalchemy.exc as sa_exc

    from glacier_pipelines.catalog.errors import CatalogUnavailable
    from glacier_pipelines.core.moves import MoveError

    if isinstance(exc, (ValueError, MoveError)):
        return 2, _one_line(exc)
    if isinstance(exc, (TransientFault, TransportError, CatalogUnavailable)):
        return 1, _one_line(exc)
    if isinstance(exc, sa_exc.OperationalError) and exc.statement is None:
        from glacier_pipelines.catalog.errors import first_line

        return 1, f"the catalog's database is unreachable ({first_line(exc.orig or exc)}); try again once it is back (GLACIER_CATALOG_URL)"
    if isinstance(exc, (bce.EndpointConnectionError, bce.ConnectTimeoutError, bce.ReadTimeoutError, bce.ConnectionClosedError)):
        return 1, f"S3 is unreachable ({type(exc).__name__}: {_one_line(exc)}); nothing is lost, try again later"
    if isinstance(exc, bce.NoCredentialsError):
        return 2, "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
    dagster = sys.modules.get("dagster")
    if dagster is not None and isinstance(exc, dagster.Failure):  # raised by a resource refusing its configuration
        return 2, _one_line(exc.description or exc)
    if isinstance(exc, (ConnectionError, TimeoutError)):  # a peer refused or timed out: transient
        return 1, f"{type(exc).__name__}: {_one_line(exc)}; nothing is lost, try again later"
    if isinstance(exc, OSError):  # a missing or unreadable file, a folder that cannot be created
        return 2, _one_line(exc)
    return None, ""


def log_path() -> Path:
    """Where unexpected errors are logged in full: $GLACIER_HOME/logs/glacier-pipelines.log."""
    try:
        home = load_settings().home_dir
    except Exception:  # noqa: BLE001 - settings that do not load still leave a place to log
        home = Path(os.environ.get("GLACIER_HOME") or ".glacier").expanduser().resolve()
    return home / "logs" / "glacier-pipelines.log"


def _log_unexpected(command: str, exc: BaseException) -> str:
    import datetime
    import tempfile
    import traceback

    text = (f"{datetime.datetime.now(datetime.timezone.utc).isoformat()} glacier-pipelines {command} (pid {os.getpid()}):\n"
            + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)) + "\n")
    for path in (log_path(), Path(tempfile.gettempdir()) / "glacier-pipelines.log"):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write(text)
            return str(path)
        except OSError:
            continue
    return "nowhere: the log file could not be written"


if __name__ == "__main__":
    sys.exit(main())
