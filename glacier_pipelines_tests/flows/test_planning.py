"""One planner for archive runs (issue #15): a tenant's concurrency, run keys, and two runs of one tenant at once."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.flows import archive as flow
from glacier_pipelines.flows.planning import parse_concurrency, plan_archive_runs
from glacier_pipelines.resources.archive import archive_setup


def _submit(archive, tenant: str, n: int) -> None:
    archive.submit(
        *[
            archive.request(
                tenant,
                archive.file(f"{tenant}-{i}", f"{tenant} file {i}".encode()),
                f"{tenant} file {i}".encode(),
                requestId=f"{tenant}-{i}",
            )
            for i in range(n)
        ]
    )


def test_concurrency_setting_is_parsed_and_refused_clearly():
    assert parse_concurrency("") == (1, {})
    assert parse_concurrency("3") == (3, {})
    assert parse_concurrency("1,lab=4, museum=2") == (1, {"lab": 4, "museum": 2})
    for bad in ("0", "lab=0", "two", "lab=x"):
        with pytest.raises(ValueError, match="GLACIER_TENANT_RUNS"):
            parse_concurrency(bad)


def test_a_tenant_gets_as_many_runs_as_its_concurrency_and_its_backlog_allow(archive):
    _submit(archive, "lab", 5)
    _submit(archive, "museum", 5)
    catalog = archive.catalog()
    alive = lambda owner: False  # noqa: E731

    one_each = plan_archive_runs(catalog, alive, batch_size=2)
    assert sorted(p.tenant for p in one_each) == ["lab", "museum"]

    plans = plan_archive_runs(catalog, alive, batch_size=2, concurrency="1,lab=4")
    lab = [p for p in plans if p.tenant == "lab"]
    assert [p.slot for p in lab] == [0, 1, 2] and len({p.run_key for p in lab}) == 3  # 5 pending / 2 per batch: 3 runs, not 4
    assert [p.slot for p in plans if p.tenant == "museum"] == [0]

    busy = plan_archive_runs(catalog, alive, batch_size=2, concurrency="4", runs_in_progress=lambda tenant: 2)
    assert Counter(p.tenant for p in busy) == {"lab": 1, "museum": 1}  # 3 wanted, 2 already running
    again = plan_archive_runs(catalog, alive, batch_size=2, concurrency="1,lab=4")
    assert [p.run_key for p in again] == [p.run_key for p in plans], "the same state plans the same run keys"


def test_two_runs_of_one_tenant_at_once_answer_every_request_once(archive):
    _submit(archive, "lab", 12)
    r = archive.defs().resources
    setup = archive_setup(r["catalog"], r["archive_store"], r["sources"], r["request_transport"])
    batches: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(run_id: str) -> None:
        try:
            start.wait()
            while True:  # like the planner's runs: each claims its own batch until nothing is pending
                batch, claimed = flow.claim_batch(setup.catalog, "lab", run_id, 3, lambda owner: False)
                if not claimed:
                    return
                batches.setdefault(run_id, []).append(batch)
                flow.verify_waiting(setup, "lab", run_id, lambda owner: False)
                flow.store_waiting(setup, "lab", run_id, lambda owner: False)
                flow.check_waiting(setup, "lab")
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"run-{i}",)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors
    assert all(batches.get(f"run-{i}") for i in range(2)), "both runs took work"
    with setup.catalog.engine.connect() as conn:
        per_batch = conn.execute(sa.select(t.requests.c.batch_id, sa.func.count()).group_by(t.requests.c.batch_id)).all()
        answers = Counter(conn.execute(sa.select(t.responses.c.request_id).where(t.responses.c.status == t.SUCCESS)).scalars())
    assert sum(n for _, n in per_batch) == 12 and all(n <= 3 for _, n in per_batch)
    assert {r["status"] for r in archive.report("lab").values()} == {"SUCCESS"}
    assert len(answers) == 12 and set(answers.values()) == {1}
