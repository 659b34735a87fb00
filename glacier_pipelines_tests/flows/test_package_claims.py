"""Two runs that close packages at once (GLACIER_TENANT_RUNS above 1, or the hourly package_job beside an archive run):
each package is built and stored by one of them, and every member is answered once, as stored."""

from __future__ import annotations

import hashlib

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.packages import PackageStore
from glacier_pipelines.core import staging
from glacier_pipelines.flows import archive as flow
from glacier_pipelines.flows import packaging
from glacier_pipelines.resources.archive import archive_setup
from glacier_pipelines_tests.conftest import BUCKET, s3_client


def _setup(archive):
    r = archive.defs().resources
    return archive_setup(r["catalog"], r["archive_store"], r["sources"], r["request_transport"])


def _data(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest() * (10 + len(name))


def _members_waiting(archive, setup, names):
    archive.submit(
        *(archive.request("lab", archive.file(n, _data(n)), _data(n), requestId=n, activateSmallFilePackaging=True) for n in names)
    )
    batch, _ = flow.claim_batch(setup.catalog, "lab", "run-1", 100, lambda run: True)
    flow.verify_batch(setup, batch, "lab", "run-1")
    packaging.add_verified_members(setup, batch, "lab", "run-1")


def test_a_package_another_run_is_closing_is_left_to_it(archive, monkeypatch):
    setup = _setup(archive)
    _members_waiting(archive, setup, ["a", "b", "c", "d"])
    real_read, inner, started = staging.read_bytes, [], []

    def read_bytes(stores, locator):
        if not started:  # while run-1 builds the tar, run-2 closes what is due
            started.append(True)
            inner.append(packaging.close_due(setup, setup.packaging, "lab", "run-2", close_all=True))
        return real_read(stores, locator)

    monkeypatch.setattr(staging, "read_bytes", read_bytes)
    first = packaging.close_due(setup, setup.packaging, "lab", "run-1", close_all=True)
    [second] = inner
    assert (first.closed, first.failed, first.members_stored) == (1, [], 4)
    assert (second.closed, second.failed) == (0, [])  # it found nothing it could close
    checked = packaging.check_packages(setup, "lab")
    assert checked.problems == [] and checked.answered == {t.SUCCESS: 4, t.ERROR: 0}
    assert archive.catalog().status_counts("lab") == {t.SUCCESS: 4}
    tars = [o["Key"] for o in s3_client().list_objects_v2(Bucket=BUCKET).get("Contents", []) if o["Key"].endswith(".tar")]
    assert len(tars) == 1


def test_a_package_whose_closing_run_ended_is_closed_by_the_next(archive, monkeypatch):
    """A run that died while closing leaves its claim; a run that finds that run over takes the package, nothing is lost."""
    setup = _setup(archive)
    _members_waiting(archive, setup, ["a", "b"])
    store = PackageStore(setup.catalog)
    [package] = store.open_packages("lab")
    assert store.claim_for_closing(package["id"], "run-dead", lambda run: False)
    assert store.open_packages("lab") == []  # claimed: no longer open to new members or to other closers
    assert not store.claim_for_closing(package["id"], "run-2", lambda run: False)  # its closer may still be at work
    alive = packaging.close_due(setup, setup.packaging, "lab", "run-2", close_all=True, run_finished=lambda run: False)
    assert alive.closed == 0
    taken = packaging.close_due(setup, setup.packaging, "lab", "run-2", close_all=True, run_finished=lambda run: run == "run-dead")
    assert (taken.closed, taken.members_stored, taken.failed) == (1, 2, [])
    assert packaging.check_packages(setup, "lab").answered == {t.SUCCESS: 2, t.ERROR: 0}


def test_a_package_that_could_not_be_stored_is_open_again_for_the_next_close(archive, monkeypatch):
    setup = _setup(archive)
    _members_waiting(archive, setup, ["a", "b"])
    real_put = packaging.put_document

    def put_document(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(packaging, "put_document", put_document)
    failed = packaging.close_due(setup, setup.packaging, "lab", "run-1", close_all=True)
    assert failed.closed == 0 and "disk gone" in failed.failed[0][1]
    assert [p["state"] for p in PackageStore(setup.catalog).open_packages("lab")] == ["OPEN"]
    monkeypatch.setattr(packaging, "put_document", real_put)
    again = packaging.close_due(setup, setup.packaging, "lab", "run-2", close_all=True)
    assert (again.closed, again.members_stored) == (1, 2)
    assert packaging.check_packages(setup, "lab").answered == {t.SUCCESS: 2, t.ERROR: 0}
