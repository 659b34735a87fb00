"""verify_batch records its verified files in groups: each group's bytes synced, then the group marked VERIFIED, on a
thread of its own while the next group is verified; in order, and a group that cannot be recorded stops the step."""

from __future__ import annotations

import threading

import pytest

from glacier_pipelines.core import staging, transfer
from glacier_pipelines.flows import verifier
from glacier_pipelines_tests.flows.test_fetch_processes import _data, _setup, _submit, _verify


@pytest.fixture
def groups_of_five(monkeypatch):
    monkeypatch.setattr(verifier, "VERIFIED_PER_COMMIT", 5)


def test_the_next_group_is_verified_while_the_last_one_is_synced_and_recorded(archive, groups_of_five, monkeypatch):
    _submit(archive, 15)
    setup = _setup(archive, fetch_processes=0)
    second_group_started = threading.Event()
    overlapped: list[bool] = []
    recorded: list[list[str]] = []
    real_verify_one, real_sync, real_mark = verifier.BatchVerifier._verify_one, transfer.sync_staged, type(setup.catalog).mark_verified_many

    def verify_one(self, row):
        if self.report.considered == 5:  # the sixth request: the first of the second group
            second_group_started.set()
        return real_verify_one(self, row)

    def sync_staged(paths):
        if not overlapped:  # the first group's sync waits (up to 10 s) for the verifier to go on without it
            overlapped.append(second_group_started.wait(timeout=10))
        return real_sync(paths)

    def mark_verified_many(catalog, entries):
        recorded.append([e["row"].request_id for e in entries])
        return real_mark(catalog, entries)

    monkeypatch.setattr(verifier.BatchVerifier, "_verify_one", verify_one)
    monkeypatch.setattr(transfer, "sync_staged", sync_staged)
    monkeypatch.setattr(type(setup.catalog), "mark_verified_many", mark_verified_many)
    batch, report = _verify(archive, setup)
    assert overlapped == [True]
    assert recorded == [[f"f{i}" for i in range(g, g + 5)] for g in (0, 5, 10)]  # every group, once, in order
    assert report.verified == 15 and setup.catalog.status_counts("lab") == {"VERIFIED": 15}
    for row in setup.catalog.batch_requests(batch):
        assert staging.read_bytes(None, row.stage["path"]) == _data(int(row.request_id[1:]))


def test_a_group_that_cannot_be_recorded_stops_the_step_and_its_requests_stay_claimed(archive, groups_of_five, monkeypatch):
    """No request is answered for the catalog's trouble: the groups before it are VERIFIED, it and the rest stay
    CLAIMED, and the next run fetches them again."""
    _submit(archive, 15)
    setup = _setup(archive, fetch_processes=0)
    real_mark = type(setup.catalog).mark_verified_many
    calls: list[int] = []

    def mark_verified_many(catalog, entries):
        calls.append(len(entries))
        if len(calls) == 2:
            raise RuntimeError("the catalog went away")
        return real_mark(catalog, entries)

    monkeypatch.setattr(type(setup.catalog), "mark_verified_many", mark_verified_many)
    with pytest.raises(RuntimeError, match="the catalog went away"):
        _verify(archive, setup)
    assert calls == [5, 5]  # nothing recorded after the failure
    assert setup.catalog.status_counts("lab") == {"VERIFIED": 5, "CLAIMED": 10}
