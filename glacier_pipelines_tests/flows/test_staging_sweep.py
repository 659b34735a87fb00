"""Staged files that nothing waits on are swept once stale; what a request or an open package needs is kept."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import datetime, timedelta, timezone

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.flows import archive as flow
from glacier_pipelines.flows import packaging
from glacier_pipelines.resources.archive import archive_setup

DAY = 24 * 3600


def _setup(archive):
    r = archive.defs().resources
    return archive_setup(r["catalog"], r["archive_store"], r["sources"], r["request_transport"])


def _age(path, seconds):
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


def _small(archive, name):
    data = hashlib.sha256(name.encode()).digest() * 20
    return archive.request("lab", archive.file(name, data), data, requestId=name, activateSmallFilePackaging=True)


def _staged_in_open_package(archive, *names):
    """Run the archive steps so the named small files wait, staged, in an open package."""
    archive.submit(*(_small(archive, n) for n in names))
    setup = _setup(archive)
    batch, _ = flow.claim_batch(setup.catalog, "lab", "run-1", 10, lambda run: True)
    flow.verify_batch(setup, batch, "lab", "run-1")
    flow.store_batch(setup, batch, "lab", "run-1")
    flow.check_batch(setup, batch)  # the blocking check answers the stored requests
    assert packaging.add_verified_members(setup, batch, "lab", "run-1") == len(names)
    return setup


def test_sweep_keeps_what_is_waited_on_and_removes_stale_orphans(archive):
    setup = _staged_in_open_package(archive, "m1", "m2")
    assert archive.catalog().status_counts("lab") == {t.DELAYED: 2}

    folder = setup.staging_dir / "lab"
    members = sorted(p for p in folder.rglob("*") if p.is_file())
    assert [m.suffix for m in members] == [".seg"]  # both members appended to one segment, synced once
    for m in members:
        _age(m, 3 * DAY)  # old, but their open package still needs them
    (folder / "packages").mkdir(exist_ok=True)
    orphans = {name: folder / name for name in ("old-orphan", "half-written.part")}
    orphans["nested"] = members[0].parent / "left-in-a-subfolder"
    orphans["tar"] = folder / "packages" / "00000000-gone.tar"
    for path in orphans.values():
        path.write_bytes(b"left by a killed process")
        _age(path, 3 * DAY)
    fresh = folder / "being-written"
    fresh.write_bytes(b"a run may be writing this right now")

    removed = flow.sweep_staging(setup, "lab")
    assert sorted(removed) == sorted(str(p) for p in orphans.values())
    assert all(m.exists() for m in members) and fresh.exists()

    # Stale for the age guard only once it is older than stale_upload_age (24 h by default).
    later = datetime.now(timezone.utc) + timedelta(days=2)
    assert flow.sweep_staging(setup, "lab", now=later) == [str(fresh)]
    assert all(m.exists() for m in members)


def test_a_member_copy_left_by_a_kill_after_the_package_was_stored_is_swept(archive):
    """The window the fault suite found: killed between mark_stored and the removal of the members' staged copies."""
    setup = _staged_in_open_package(archive, "k1", "k2")
    folder = setup.staging_dir / "lab"
    staged = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert len(staged) == 1  # the segment both members were appended to
    report = packaging.close_due(setup, setup.packaging, "lab", "run-2", close_all=True)
    packaging.check_packages(setup, "lab")  # package_integrity answers the members
    assert report.closed == 1 and archive.catalog().status_counts("lab") == {t.SUCCESS: 2}

    for path, data in staged.items():  # as if the process had died before its unlinks
        path.write_bytes(data)
        _age(path, 2 * DAY)
    archive.submit(archive.request("lab", archive.file("next", b"next"), b"next", requestId="next"))
    batch, _ = flow.claim_batch(setup.catalog, "lab", "run-3", 10, lambda run: True)
    flow.verify_batch(setup, batch, "lab", "run-3")
    stored = flow.store_batch(setup, batch, "lab", "run-3")
    flow.check_batch(setup, batch)  # the blocking check answers the stored requests
    assert stored.swept_staged_files == 1  # the next run's store step cleans up
    assert not any(p.is_file() for p in folder.rglob("*"))
    assert archive.catalog().status_counts("lab") == {t.SUCCESS: 3}
