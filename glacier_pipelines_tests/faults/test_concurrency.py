"""Concurrent runs over the same objects (issue #21, item 4): each object is copied or restored once, and every report
says which run did what. Two threads start together at a barrier, on in-process moto, on SQLite and on PostgreSQL;
the S3 writes are counted per key with botocore event hooks, so "once" is counted, not assumed.

Each test records its row of docs/reliability.md (side ``concurrency``): *requests* are the objects, *lost* an object
no run copied, *duplicated* a second copy (or a second RestoreObject), *orphaned* a multipart upload left open, and
*mismatched* a report that says something wrong about an object (skipped though another run copied it, or another
run named than the one that did it).
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from glacier_pipelines.catalog import claims as cl
from glacier_pipelines.catalog import tables as t
from glacier_pipelines.flows import moves as flow
from glacier_pipelines_tests.conftest import BUCKET, s3_client
from glacier_pipelines_tests.faults import invariants
from glacier_pipelines_tests.flows.test_moves import CopyCounter, moves, put  # noqa: F401  (moves: the fixture)
from glacier_pipelines_tests.flows.test_vault_flow import emulator, vault_env  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.faults]
NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


@pytest.fixture(autouse=True)
def _on_sqlite_and_postgresql(catalog_backend):
    """Run on both catalog databases."""


def together(*calls):
    """Run the calls in threads that start at one barrier; their results, in order (an exception is raised here)."""
    barrier = threading.Barrier(len(calls))

    def start(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return [f.result() for f in [pool.submit(start, call) for call in calls]]


def test_two_concurrent_moves_of_one_prefix_copy_each_object_once_and_say_which_run_did_what(
    archive,
    moves,
    reliability,  # noqa: F811
    catalog_backend,
):
    keys = [f"archive/lab/scans/{i:03d}.tif" for i in range(50)]
    for i, key in enumerate(keys):
        put(key, f"scan {i} ".encode() * 40)
    request = flow.MoveRequest(tenant="lab", url=f"s3://{BUCKET}/archive/lab/scans/", storage_class="DEEP_ARCHIVE")
    setups = {run: moves() for run in ("run-a", "run-b")}
    counters = {run: CopyCounter(setup.s3) for run, setup in setups.items()}

    reports = dict(zip(setups, together(*[lambda run=run: flow.move(setups[run], request, run_id=run) for run in setups])))

    copies = counters["run-a"].copies + counters["run-b"].copies
    copied_by = {key: run for run, counter in counters.items() for key in counter.copies}
    tally = invariants.Tally(requests=len(keys))
    tally.lost = sum(
        1 for k in keys if copies[k] == 0 or s3_client().head_object(Bucket=BUCKET, Key=k).get("StorageClass") != "DEEP_ARCHIVE"
    )
    tally.duplicated = sum(n - 1 for n in copies.values() if n > 1)
    tally.orphaned = len(s3_client().list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))
    tally.statuses = Counter()
    for run, report in reports.items():
        by_key = {o.source.split(f"s3://{BUCKET}/", 1)[1]: o for o in report.outcomes}
        assert sorted(by_key) == keys and report.run_id == run
        for key in keys:
            out = by_key[key]
            tally.statuses[out.status] += 1
            right = (out.status == flow.MOVED and copied_by.get(key) == run and out.done_by == run) or (
                out.status in (flow.BY_OTHER_RUN, flow.IN_OTHER_RUN) and copied_by.get(key) == out.done_by != run
            )
            if not right:
                tally.mismatched += 1
                tally.problems.append(f"{run} reports {key} as {out.status} by {out.done_by}; {copied_by.get(key)} copied it")
        # The report adds up: this run's copies plus the other run's make every object.
        counts = report.as_dict()
        assert counts["moved"] + counts["movedByOtherRuns"] + counts["inOtherRuns"] == len(keys)
        assert counts["skipped"] == counts["failed"] == 0
        assert counts["copiedByRun"].get(run, 0) == sum(1 for k in keys if copied_by.get(k) == run)
    assert sum(r.count(flow.MOVED) for r in reports.values()) == len(keys)  # each object moved by exactly one of the two
    # The catalog names the run that copied each object.
    rows = setups["run-a"].store.rows("lab")
    assert len(rows) == len(keys) and {r["source_key"]: r["copied_by"] for r in rows} == copied_by
    assert {r["status"] for r in rows} == {"DONE"}
    reliability(
        f"two `move` runs of one prefix at once (threads started at a barrier; catalog on {NAMES[catalog_backend]})",
        2,
        tally,
        side="concurrency",
        outcome=f"{len(keys)} objects, each copied once: "
        + ", ".join(f"{counters[run].copies.total()} by {run}" for run in setups)
        + "; both reports name the run that copied each object, none says skipped",
    )


def test_a_claim_of_a_run_that_is_over_is_taken_over_and_a_live_one_is_left_alone(archive, moves):  # noqa: F811
    setup = moves()
    store = cl.ClaimStore(setup.catalog, timeout=timedelta(minutes=30))
    key = cl.claim_key(BUCKET, "archive/lab/x")
    assert store.claim(cl.MOVE, key, "run-a").won
    live = store.claim(cl.MOVE, key, "run-b")
    assert (live.won, live.holder) == (False, "run-a")  # run-a is alive: left to it
    # run-a's heartbeat stops: 31 minutes later its claim is stale and run-b takes it over.
    with setup.catalog.engine.begin() as conn:
        conn.execute(t.claims.update().values(claimed_at=datetime.now(timezone.utc) - timedelta(minutes=31)))
    stale = store.claim(cl.MOVE, key, "run-b")
    assert (stale.won, stale.holder, stale.taken_from) == (True, "run-b", "run-a")
    assert not store.heartbeat(cl.MOVE, key, "run-a")  # the dead run's late heartbeat does not take it back
    # A claim of a process that is gone (on this host) is taken over at once, without waiting for the timeout.
    with setup.catalog.engine.begin() as conn:
        gone = f"{cl.claimant().rsplit(':', 1)[0]}:{2**22 + 7}"  # this host, a pid above Linux's maximum
        conn.execute(t.claims.update().values(claimant=gone, claimed_at=datetime.now(timezone.utc)))
    assert store.claim(cl.MOVE, key, "run-c").taken_from == "run-b"
    # Dagster saying the run is over is enough too.
    over = cl.ClaimStore(setup.catalog, run_finished=lambda run: run == "run-c")
    assert over.claim(cl.MOVE, key, "run-d").taken_from == "run-c"
    with setup.catalog.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.claims)).scalar() == 1


def test_a_move_takes_over_the_objects_of_a_run_that_died_holding_them(archive, moves):  # noqa: F811
    keys = [f"archive/lab/left/{i}.bin" for i in range(4)]
    for i, key in enumerate(keys):
        put(key, b"left behind %d" % i)
    setup = moves()
    claims = setup.claims
    for key in keys[:2]:  # a run died after claiming two objects: its claims are 31 minutes old
        assert claims.claim(cl.MOVE, cl.claim_key(BUCKET, key), "dead-run").won
    with setup.catalog.engine.begin() as conn:
        conn.execute(t.claims.update().values(claimed_at=datetime.now(timezone.utc) - timedelta(minutes=31)))
    counter = CopyCounter(setup.s3)
    report = flow.move(setup, flow.MoveRequest(tenant="lab", url=f"s3://{BUCKET}/archive/lab/left/"), run_id="run-new")
    assert [o.status for o in report.outcomes] == [flow.MOVED] * 4 and counter.copies == {k: 1 for k in keys}


def test_an_object_held_by_a_live_run_is_left_to_it_and_reported_as_in_that_run(archive, moves):  # noqa: F811
    put("archive/lab/busy/one.bin", b"being moved elsewhere")
    put("archive/lab/busy/two.bin", b"free")
    setup = moves()
    setup.wait_for_other_runs = 0.3  # the other run does not finish: the report says it still holds the object
    assert setup.claims.claim(cl.MOVE, cl.claim_key(BUCKET, "archive/lab/busy/one.bin"), "run-elsewhere").won
    counter = CopyCounter(setup.s3)
    report = flow.move(setup, flow.MoveRequest(tenant="lab", url=f"s3://{BUCKET}/archive/lab/busy/"), run_id="run-here")
    by_key = {o.source.rsplit("/", 1)[1]: o for o in report.outcomes}
    assert (by_key["one.bin"].status, by_key["one.bin"].done_by) == (flow.IN_OTHER_RUN, "run-elsewhere")
    assert "being moved by run run-elsewhere" in by_key["one.bin"].messages[0]
    assert by_key["two.bin"].status == flow.MOVED and counter.copies == {"archive/lab/busy/two.bin": 1}
    assert report.as_dict()["inOtherRuns"] == 1


# ---- restores ---------------------------------------------------------------------------------


def _archive_one(archive, request_id: str, data: bytes) -> None:
    """One file archived (DEEP_ARCHIVE) by the archive path's own steps, without a Dagster run."""
    from glacier_pipelines.flows import archive as archive_flow
    from glacier_pipelines.resources.archive import archive_setup

    archive.submit(archive.request("lab", archive.file(request_id, data), data, requestId=request_id))
    r = archive.defs().resources
    setup = archive_setup(r["catalog"], r["archive_store"], r["sources"], r["request_transport"])
    batch, _ = archive_flow.claim_batch(setup.catalog, "lab", "setup", 100, lambda run: True)
    archive_flow.verify_batch(setup, batch, "lab", "setup")
    archive_flow.store_batch(setup, batch, "lab", "setup")
    archive_flow.check_batch(setup, batch)
    assert archive.report("lab")[request_id]["status"] == "SUCCESS"


def test_two_concurrent_restores_of_one_object_send_one_restore_object_and_deliver_once(archive, reliability, catalog_backend):
    from glacier_pipelines.core.restores import parse_restore_request
    from glacier_pipelines.flows import restore as restore_flow

    _archive_one(archive, "scan", b"an archived scan" * 64)
    r = archive.defs().resources
    setups = {run: r["restore"].setup(r["catalog"], r["archive_store"]) for run in ("run-a", "run-b")}
    calls: dict[str, Counter] = {run: Counter() for run in setups}
    for run, setup in setups.items():
        for op in ("RestoreObject", "GetObject", "PutObject"):
            # after-call: calls sent to S3 (a pre-signed URL is none)
            setup.s3.meta.events.register(f"after-call.s3.{op}", lambda op=op, run=run, **_: calls[run].update([op]))
    restore_ids = [
        restore_flow.submit(
            setups["run-a"],
            parse_restore_request({"tenant": "lab", "files": [{"requestId": "scan"}], "days": 3, "tier": "Bulk", "requester": who}),
        )["restoreId"]
        for who in ("ana@example.org", "ben@example.org")
    ]

    started = dict(zip(setups, together(*[lambda run=run: restore_flow.start(setups[run], "lab", run) for run in setups])))
    delivered = dict(zip(setups, together(*[lambda run=run: restore_flow.deliver(setups[run], "lab", run) for run in setups])))

    sent = {run: calls[run]["RestoreObject"] for run in setups}
    [requester_run] = [run for run, n in sent.items() if n]
    rows = restore_flow.report_rows(setups["run-a"], "lab")
    tally = invariants.Tally(requests=len(restore_ids), statuses=Counter(row["status"] for row in rows))
    tally.duplicated = sum(sent.values()) - 1 + sum(calls[run]["GetObject"] for run in setups) - 1  # one restore, one verifying read
    tally.lost = sum(1 for row in rows if row["status"] != "READY" or not row["downloadUrl"])
    tally.mismatched = sum(1 for row in rows if row["restoreRequestedByRun"] != requester_run)
    assert sorted(row["restoreId"] for row in rows) == sorted(restore_ids)
    assert sum(rep.started for rep in started.values()) == 1 and sum(rep.ready for rep in delivered.values()) == 2
    assert {row["doneByRun"] for row in rows} <= set(setups)
    reliability(
        f"two restores of one object at once (two restore requests, two runs at a barrier; catalog on {NAMES[catalog_backend]})",
        2,
        tally,
        side="concurrency",
        outcome=f"1 RestoreObject (by {requester_run}), 1 verifying read; both requests READY, both name the run that asked S3",
    )


# ---- vault migrations -------------------------------------------------------------------------


def test_two_concurrent_migrations_of_one_vault_retrieve_and_copy_each_archive_once(
    vault_env,
    emulator,
    reliability,  # noqa: F811
    catalog_backend,
):
    from glacier_pipelines.flows import vault as vault_flow
    from glacier_pipelines_tests.flows.test_vault_flow import VAULT, S3Calls, initiated, make_setup, payload, stored
    from glacier_pipelines_tests.vault_double import MiB

    data = [payload(MiB * (n % 3) + 1000 * n, n) for n in range(8)]  # 1 to 3 parts each, the first one empty
    ids = [emulator.add_archive(VAULT, d, f"f{n}.bin", f"2020-01-0{n + 1}T00:00:00.000Z") for n, d in enumerate(data)]
    setups = {run: make_setup(vault_env, emulator) for run in ("run-a", "run-b")}
    calls = {run: S3Calls(setup.s3) for run, setup in setups.items()}

    reports = dict(
        zip(
            setups,
            together(
                *[
                    lambda run=run: vault_flow.migrate(
                        setups[run], VAULT, wait=True, poll_seconds=0.05, timeout_seconds=60, progress=lambda _: None, run_id=run
                    )
                    for run in setups
                ]
            ),
        )
    )

    keys = {r["archiveId"]: r["destinationKey"] for r in reports["run-a"]}
    writes: Counter = Counter()  # (key, part number) -> uploads; an empty archive is one PutObject (part 0)
    writer: dict[str, set[str]] = {}
    for run, c in calls.items():
        for p in c.ops("UploadPart") + [dict(p, PartNumber=0) for p in c.ops("PutObject") if "/~ledger/" not in p["Key"]]:
            writes[(p["Key"], p["PartNumber"])] += 1
            writer.setdefault(p["Key"], set()).add(run)
    jobs = Counter(j["ArchiveId"] for j in initiated(emulator))
    tally = invariants.Tally(requests=len(ids))
    tally.duplicated = (
        sum(n - 1 for n in writes.values() if n > 1)
        + sum(n - 1 for n in jobs.values() if n > 1)
        + max(len(initiated(emulator, "InventoryRetrieval")) - 1, 0)
    )
    tally.lost = sum(1 for n, a in enumerate(ids) if stored(keys[a]) != data[n])
    tally.orphaned = len(s3_client().list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))
    for run, report in reports.items():
        for row in report:
            tally.statuses[row["status"]] += 1
            if row["status"] != "DONE" or writer.get(row["destinationKey"]) != {row["doneByRun"]}:
                tally.mismatched += 1
                tally.problems.append(
                    f"{run}'s report: {row['archiveId'][:12]} {row['status']} by {row['doneByRun']}, "
                    f"written by {writer.get(row['destinationKey'])}"
                )
    assert reports["run-a"] == reports["run-b"]  # one state of the vault, whichever run reads it
    assert sorted(jobs) == sorted(ids[1:]) and ids[0] not in jobs  # one retrieval job per archive; none for 0 bytes
    by_run = Counter(row["doneByRun"] for row in reports["run-a"])
    reliability(
        f"two `vault migrate` runs of one vault at once (threads started at a barrier; catalog on {NAMES[catalog_backend]})",
        2,
        tally,
        side="concurrency",
        outcome=f"{len(ids)} archives: one inventory job, one retrieval job and one upload per part each; "
        + ", ".join(f"{n} copied by {run}" for run, n in sorted(by_run.items()))
        + "; the report names the run that copied each",
    )
