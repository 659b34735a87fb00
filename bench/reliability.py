"""Reliability report: run the fault-injection tests (`pytest -m faults`) and tabulate what they counted.

Each fault test appends one JSON line (fault, times injected, requests, lost, duplicated,
orphaned, mismatched) to the file named by GLACIER_RELIABILITY_REPORT; this script runs the
tests with it set, then writes the table into docs/reliability.md and prints it.

    .venv/bin/python bench/reliability.py
    .venv/bin/python bench/reliability.py --out docs/reliability.md -- -k "not broker"
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMAND = ".venv/bin/python bench/reliability.py"
HAND_KEPT = "<!-- kept by hand below: bench/reliability.py carries it over -->"


def run_faults(extra: list[str]) -> tuple[int, list[dict], float, str]:
    with tempfile.TemporaryDirectory() as tmp:
        rows_path = Path(tmp) / "rows.jsonl"
        env = dict(os.environ, GLACIER_RELIABILITY_REPORT=str(rows_path))
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-m", "faults", "-q", "-p", "no:cacheprovider", *extra],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.monotonic() - started
        rows = [json.loads(line) for line in rows_path.read_text().splitlines()] if rows_path.exists() else []
    summary = next((line for line in reversed(proc.stdout.splitlines()) if " in " in line and ("passed" in line or "failed" in line)), "")
    if proc.returncode != 0:  # the failures, without the captured log lines
        kept = [line for line in proc.stdout.splitlines() if not line.startswith(("ERROR    ", "WARNING  ", "INFO     ", "DEBUG    "))]
        sys.stderr.write("\n".join(kept)[-12000:] + proc.stderr[-2000:])
    return proc.returncode, rows, seconds, summary


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(rows: list[dict], summary: str, seconds: float, returncode: int) -> str:
    totals = {k: sum(r[k] for r in rows) for k in ("injected", "requests", "lost", "duplicated", "orphaned", "mismatched")}
    lines = [
        "# Reliability: fault injection",
        "",
        "Each fault is injected for real while a batch is archived, then the test counts what happened "
        "(`glacier_pipelines_tests/faults/`, marker `faults`). Every request must end with exactly one terminal "
        "result; every successful result must name an object whose bytes (read back in full) match the source; "
        "no object may exist that no result names, and no multipart upload may stay open after the clean-up; "
        "no request may be dropped. *lost*, *duplicated* and *orphaned* must be 0, and so must *mismatched*.",
        "",
        "Rows of side *concurrency* run two runs over the same objects at once (issue #21): *requests* counts the objects "
        "(or restore requests), *lost* an object no run copied, *duplicated* a second copy, retrieval job or RestoreObject, "
        '*orphaned* a multipart upload left open, and *mismatched* a report that answers wrongly about an object ("skipped" '
        "though another run copied it, or another run named than the one that did it).",
        "",
        f"Produced by `{COMMAND}` on {date.today().isoformat()} ({platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}): {summary or 'no pytest summary'} ({seconds:.0f} s in all"
        + ("" if returncode == 0 else f"; pytest exit code {returncode}")
        + ").",
        "",
        "| side | fault | times injected | requests | lost | duplicated | orphaned | mismatched | outcome |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(r["statuses"].items()))
        outcome = "; ".join(x for x in (statuses, r.get("outcome", "")) if x)
        lines.append(
            f"| {r['side']} | {_cell(r['fault'])} | {r['injected']} | {r['requests']} | {r['lost']} | {r['duplicated']} | "
            f"{r['orphaned']} | {r['mismatched']} | {_cell(outcome)} |"
        )
    lines.append(
        f"| **all** | | **{totals['injected']}** | **{totals['requests']}** | **{totals['lost']}** | "
        f"**{totals['duplicated']}** | **{totals['orphaned']}** | **{totals['mismatched']}** | |"
    )
    lines += [
        "",
        "How each fault is injected:",
        "",
        "- **S3**: `s3_proxy.FaultProxy`, a threaded HTTP proxy on loopback between the product's boto3 client and moto "
        "in server mode. It answers `503 SlowDown` or `500 InternalError` without forwarding, resets the TCP connection "
        "(RST) halfway through a request body, forwards a request and then holds the answer past the client's read "
        "timeout (S3 did the work, the client gave up), or rewrites `x-amz-checksum-sha256` in HEAD answers. Objects "
        "are written in the STANDARD class so the checker can read every byte back.",
        "- **source**: `source_server.ScriptedSource`, an HTTP server that resets the connection mid-body, ends the "
        "body early under a full `Content-Length`, or stalls past `GLACIER_SOURCE_TIMEOUT` (0.4 s in the test), once "
        "(survived by the fetch retry) or on every attempt (the request must end `ERROR` with the reason); and sources "
        "whose bytes differ from the announced checksum.",
        "- **process**: `glacier-pipelines process` started as a subprocess and SIGKILLed (its whole process group) at "
        "delays drawn with a fixed seed after its run claimed the batch, the first kill once a multipart upload is in "
        "flight; then run again to the end. Progress counts 1 per verified request and 2 per finished one. Uploads "
        "abandoned by a kill are left to the project's clean-up (`abort_stale_uploads` at the end of the store step; "
        "moto dates every upload 2010, so its 24 h grace period has always passed) and counted as orphans if any "
        "survive it. In the other tests an upload left open by a failed attempt is looked for before that clean-up "
        "runs, and counted as an orphan.",
        "- **broker**: `rabbitmqctl stop_app` on the local RabbitMQ between the verify and store steps, while the "
        "real `amqp_bridge_sensor` keeps ticking, then `rabbitmqctl start_app`.",
        "- **concurrency**: two threads start the same work at one barrier (`threading.Barrier`), on in-process moto, with "
        "the catalog on SQLite and on PostgreSQL (`faults/test_concurrency.py`): two `move` runs of one 50-object prefix, two "
        "`vault migrate` runs of one 8-archive vault (the vault double), two restore requests for one archived object started "
        "and delivered by two runs. botocore event hooks count every CopyObject, UploadPart, PutObject and RestoreObject per "
        "key, and the vault double every job it was asked for. Each object is claimed in the catalog before any byte moves "
        "(`catalog/claims.py`: an atomic conditional insert, or a compare-and-set update of a claim whose run is over).",
        "- **catalog**: another connection holds `BEGIN EXCLUSIVE` on the SQLite catalog for 1.5 s mid-batch "
        "(afterwards `PRAGMA integrity_check` must say `ok`); with a PostgreSQL catalog, every connection to its "
        "database is killed and new ones are refused (`ALLOW_CONNECTIONS false`) for 1.5 s mid-batch.",
        "",
        "What the faults found, fixed in the product (each test failed before its fix):",
        "",
        "- **A commit whose answer never came.** When `CompleteMultipartUpload` or `PutObject` succeeded in S3 but "
        "every answer arrived after the client's read timeout, the request ended `ERROR` while its object existed: "
        "an orphan, and a false failure. `core/transfer.py` `commit_stage` now asks S3 (HEAD with checksum mode) "
        "whether the key holds exactly the verified bytes before giving up.",
        "- **A killed `process` stranded its batch.** `execute_in_process` runs have no run monitoring, so a "
        "SIGKILLed run stayed `STARTED` for ever and `claim_batch` never adopted its batch: its requests stayed "
        "`VERIFIED` and were never answered. `process` now holds a worker lease (a `flock` named in its runs' tags; a pid "
        "at first, replaced because a pid can be reused) and marks failed, through the instance, the unfinished runs whose "
        "lease nobody holds before it starts work (`defs/intake/run_workers.py`; also each intake sensor tick).",
        "- **Two runs over the same objects did the work twice.** Two `move` runs of one prefix copied some objects twice "
        "(one crashed on the moves table's unique key) and reported them as skipped; two vault migrations started two "
        "retrieval jobs and uploaded every part twice; two restores of one object sent two RestoreObject calls. Runs now "
        "claim each object in the catalog first, leave an object another live run holds to it (taking it over once that "
        "run is over: its heartbeat older than 30 minutes, its process gone, or Dagster says it ended), and their reports "
        "name the run that did each object.",
        "- **A PostgreSQL blip failed the batch.** A connection killed by a database restart stayed in the pool and "
        "the next read raised. `catalog/store.py` now pings pooled connections before use and waits (about 5 s in "
        "all) for a database that refuses connections for a moment.",
        "",
        "`glacier_pipelines_tests/faults/invariants.py` does the counting. A row whose *outcome* names `ERROR` "
        "is a fault that must fail its request (retries exhausted, wrong bytes): the test asserts that it did, with "
        "the reason in the response, and that nothing it started was left in the bucket.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "reliability.md"))
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args()
    returncode, rows, seconds, summary = run_faults(args.pytest_args)
    text = render(rows, summary, seconds, returncode)
    out = Path(args.out)
    if out.exists() and HAND_KEPT in out.read_text(encoding="utf-8"):  # sections kept by hand follow the marker: carried over
        text = text.rstrip("\n") + "\n\n" + HAND_KEPT + out.read_text(encoding="utf-8").split(HAND_KEPT, 1)[1]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    print(f"written to {args.out}", file=sys.stderr)
    return returncode


if __name__ == "__main__":
    sys.exit(main())
