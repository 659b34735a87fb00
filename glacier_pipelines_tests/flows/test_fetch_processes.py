"""Many local small files read and hashed by worker processes (core/local_fetch.py): same stages, same failures, and
any trouble with the processes ends with the files fetched in-process, never with a request lost."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import signal

import pytest

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.core import local_fetch, segments, staging, transfer
from glacier_pipelines.core.sources import SourcePolicy
from glacier_pipelines.flows import archive as flow
from glacier_pipelines.flows import packaging, verifier
from glacier_pipelines.resources.archive import archive_setup
from glacier_pipelines_tests.conftest import image_bytes


def _setup(archive, **changes):
    r = archive.defs().resources
    return dataclasses.replace(archive_setup(r["catalog"], r["archive_store"], r["sources"], r["request_transport"]), **changes)


def _data(i: int) -> bytes:
    return hashlib.sha256(b"%d" % i).digest() * (3 + i % 40)


def _submit(archive, count: int, bad: tuple[int, ...] = ()):
    archive.submit(
        *(
            archive.request(
                "lab",
                archive.file(f"f{i}", _data(i)),
                b"other" if i in bad else _data(i),
                requestId=f"f{i}",
                activateSmallFilePackaging=True,
            )
            for i in range(count)
        )
    )


@pytest.fixture
def few_files_suffice(monkeypatch):
    monkeypatch.setattr(verifier, "PROCESS_FETCH_FROM", 8)
    monkeypatch.setattr(verifier, "PROCESS_CHUNK", 3)


@pytest.fixture
def sent(monkeypatch):
    """Counts the tasks the verifier gave the processes."""
    tasks: list[int] = []
    real_submit = local_fetch.FetchProcesses.submit

    def submit(self, policy, items, segment_folder=None):
        tasks.append(len(items))
        return real_submit(self, policy, items, segment_folder)

    monkeypatch.setattr(local_fetch.FetchProcesses, "submit", submit)
    return tasks


def _verify(archive, setup):
    batch, _ = flow.claim_batch(setup.catalog, "lab", "run-1", 100, lambda run: True)
    return batch, flow.verify_batch(setup, batch, "lab", "run-1")


def test_processes_answer_as_the_in_process_fetch_and_send_what_they_cannot_read_back(tmp_path):
    (tmp_path / "a").write_bytes(b"small")
    (tmp_path / "big").write_bytes(b"x" * 100)
    policy = SourcePolicy.from_strings(str(tmp_path))
    items = [
        ((tmp_path / "a").as_uri(), "MD5", 50),
        ((tmp_path / "big").as_uri(), "SHA-256", 50),  # over the size to hold: streamed by the verifier instead
        ((tmp_path / "missing").as_uri(), "MD5", 50),
        ("file:///etc/passwd", "MD5", 50),  # outside the roots: refused in-process, in its own words
    ]
    processes = local_fetch.FetchProcesses(1)
    try:
        answer = processes.submit(policy, items).result(timeout=60)
    finally:
        processes.shutdown()
    assert answer == [
        local_fetch.Fetched({"MD5": hashlib.md5(b"small").hexdigest(), "SHA-256": hashlib.sha256(b"small").hexdigest()}, b"small", size=5),
        None,
        None,
        None,
    ]
    assert answer == local_fetch.fetch_files(policy, items)


def test_a_process_appends_the_bytes_to_its_own_segment_and_names_them_there(tmp_path):
    """Not sent back through the pipe: each child appends to a segment of its own, until new_segments starts others."""
    for name in ("a", "b", "c"):
        (tmp_path / name).write_bytes(name.encode() * (3 + ord(name) % 5))
    policy = SourcePolicy.from_strings(str(tmp_path))
    folder = tmp_path / "staging" / "lab" / "segments"  # made by the child on first use

    def item(name):
        return ((tmp_path / name).as_uri(), "MD5", 50)

    processes = local_fetch.FetchProcesses(1)
    try:
        first = processes.submit(policy, [item("a"), item("missing"), item("b")], folder).result(timeout=60)
        second = processes.submit(policy, [item("c")], folder).result(timeout=60)
        processes.new_segments()
        third = processes.submit(policy, [item("a")], folder).result(timeout=60)
    finally:
        processes.shutdown()
    a, missing, b = first
    assert missing is None  # fetched again in-process, which says why
    for fetched, name in ((a, "a"), (b, "b"), (second[0], "c"), (third[0], "a")):
        data = (tmp_path / name).read_bytes()
        assert fetched.body is None and fetched.size == len(data) and fetched.digests["MD5"] == hashlib.md5(data).hexdigest()
        assert staging.read_bytes(None, fetched.locator) == data
    places = [segments.in_segment(f.locator) for f in (a, b, second[0], third[0])]
    assert places[0][0] == places[1][0] == places[2][0] != places[3][0]  # one segment per child until new_segments
    assert [p[1] for p in places[:3]] == [0, places[0][2], places[0][2] + places[1][2]]  # appended one after another
    assert places[3][0].startswith(str(folder)) and places[3][1] == 0


def test_a_segment_that_cannot_be_written_leaves_the_task_to_the_verifier(tmp_path):
    (tmp_path / "a").write_bytes(b"small")
    (tmp_path / "not-a-folder").write_bytes(b"")
    policy = SourcePolicy.from_strings(str(tmp_path))
    items = [((tmp_path / "a").as_uri(), "MD5", 50)]
    assert local_fetch.fetch_files(policy, items, str(tmp_path / "not-a-folder" / "x.seg")) == [None]
    [fetched] = local_fetch.fetch_files(policy, items, str(tmp_path / "ok" / "x.seg"))
    assert staging.read_bytes(None, fetched.locator) == b"small"


def test_a_process_that_dies_fails_what_it_owed_instead_of_hanging(tmp_path):
    (tmp_path / "a").write_bytes(b"small")
    processes = local_fetch.FetchProcesses(1)
    try:
        os.kill(processes.children[0].pid, signal.SIGKILL)
        processes.children[0].wait()
        future = processes.submit(SourcePolicy.from_strings(str(tmp_path)), [((tmp_path / "a").as_uri(), "MD5", 50)])
        with pytest.raises(Exception):
            future.result(timeout=30)
    finally:
        processes.shutdown()


def test_a_batch_read_by_processes_is_staged_as_the_threads_stage_it(archive, few_files_suffice, sent):
    _submit(archive, 20)
    setup = _setup(archive, fetch_processes=2)
    batch, report = _verify(archive, setup)
    assert report.verified == 20 and sum(sent) == 20  # every file went to a process
    for row in setup.catalog.batch_requests(batch):
        data = _data(int(row.request_id[1:]))
        assert (row.size, row.stage["kind"], row.stage["sha256"]) == (len(data), "member", hashlib.sha256(data).hexdigest())
        assert row.stage["s3_checksum"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
        assert staging.read_bytes(None, row.stage["path"]) == data  # appended to the group's segment, as by the threads
    assert packaging.add_verified_members(setup, batch, "lab", "run-1") == 20
    closed = packaging.close_due(setup, setup.packaging, "lab", "run-1", close_all=True)
    assert closed.closed == 1 and closed.failed == [] and packaging.check_packages(setup, "lab").problems == []


def test_the_processes_segments_are_synced_before_their_members_are_recorded(archive, few_files_suffice, monkeypatch):
    """A crash must leave either recorded members on disk or bytes no request points at: the group's segments,
    the processes' as the verifier's own, are synced before the group is marked VERIFIED."""
    _submit(archive, 30)
    setup = _setup(archive, fetch_processes=2)
    monkeypatch.setattr(verifier, "VERIFIED_PER_COMMIT", 10)  # three groups
    monkeypatch.setattr(verifier, "PROCESS_TASKS_AHEAD", 1)  # not every task sent before the first group is recorded
    synced: set[str] = set()
    unsynced_when_recorded: list[str] = []
    real_sync, real_mark = transfer.sync_staged, type(setup.catalog).mark_verified_many

    def sync_staged(paths):
        paths = list(paths)
        synced.update(paths)
        return real_sync(paths)

    def mark_verified_many(catalog, entries):
        unsynced_when_recorded.extend(
            staging.holder(e["stage"]["path"]) for e in entries if staging.holder(e["stage"]["path"]) not in synced
        )
        return real_mark(catalog, entries)

    monkeypatch.setattr(transfer, "sync_staged", sync_staged)
    monkeypatch.setattr(type(setup.catalog), "mark_verified_many", mark_verified_many)
    batch, report = _verify(archive, setup)
    assert report.verified == 30 and unsynced_when_recorded == []
    holders = {staging.holder(row.stage["path"]) for row in setup.catalog.batch_requests(batch)}
    assert holders <= synced and len(holders) > 2  # new segments after each group (tasks sent ahead finish the old ones)
    for row in setup.catalog.batch_requests(batch):
        assert staging.read_bytes(None, row.stage["path"]) == _data(int(row.request_id[1:]))


def test_an_image_appended_by_a_process_is_measured_from_its_segment(archive, few_files_suffice, sent):
    png = image_bytes("PNG", (37, 23))
    archive.submit(
        *(
            archive.request(
                "lab", archive.file(f"i{i}.png", png + b"%d" % i), png + b"%d" % i, computeImageSize=True, activateSmallFilePackaging=True
            )
            for i in range(10)
        )
    )
    setup = _setup(archive, fetch_processes=2)
    batch, report = _verify(archive, setup)
    assert report.verified == 10 and sum(sent) == 10
    rows = setup.catalog.batch_requests(batch)
    assert all(staging.in_segment(r.stage["path"]) for r in rows)
    assert {(r.width, r.height) for r in rows} == {(37, 23)}


def test_a_mismatch_found_by_a_process_fails_that_request_alone_in_the_usual_words(archive, few_files_suffice, sent):
    _submit(archive, 12, bad=(5,))
    setup = _setup(archive, fetch_processes=2)
    batch, report = _verify(archive, setup)
    assert sum(sent) == 12 and report.verified == 11
    [(request_id, reason)] = report.failed
    assert request_id == "f5" and reason.startswith("checksum mismatch: MD5 of the source is")
    assert archive.catalog().status_counts("lab") == {t.VERIFIED: 11, t.ERROR: 1}


def test_processes_that_die_mid_batch_leave_every_file_to_the_threads(archive, few_files_suffice, monkeypatch, caplog):
    _submit(archive, 24)
    real_submit = local_fetch.FetchProcesses.submit

    def submit_then_die(self, policy, items, segment_folder=None):
        future = real_submit(self, policy, items, segment_folder)
        if self.sent == 3:  # the third task: its process is killed before it can answer
            child = self.children[(self.sent - 1) % len(self.children)]
            os.kill(child.pid, signal.SIGKILL)
        return future

    monkeypatch.setattr(local_fetch.FetchProcesses, "submit", submit_then_die)
    batch, report = _verify(archive, _setup(archive, fetch_processes=2))
    assert report.verified == 24 and report.failed == []
    assert archive.catalog().status_counts("lab") == {t.VERIFIED: 24}
    assert "fetch processes stopped" in caplog.text


def test_no_processes_when_turned_off_or_for_a_batch_of_few_files(archive, sent, monkeypatch):
    _submit(archive, 10)
    monkeypatch.setattr(verifier, "PROCESS_FETCH_FROM", 8)
    batch, report = _verify(archive, _setup(archive, fetch_processes=0))
    assert report.verified == 10 and sent == []
    assert local_fetch.worker_count(None) == (2 if (os.cpu_count() or 1) >= 2 else 0) and local_fetch.worker_count(3) == 3


def test_a_fetch_process_reads_and_refuses_files_without_loading_the_http_and_s3_libraries(tmp_path):
    """The workers read file:// alone: requests, urllib3 and botocore stay unloaded (half their start and ~10 MiB each),
    and a missing file is still refused in the usual words (core/sources/errors.py looks those libraries up, not in)."""
    import json
    import subprocess
    import sys

    (tmp_path / "here.bin").write_bytes(b"bytes to hash")
    script = f"""
import json, sys
from pathlib import Path
from glacier_pipelines.core import local_fetch
from glacier_pipelines.core.sources import SourceError, SourcePolicy, open_source
policy = SourcePolicy.from_strings({str(tmp_path)!r})
found, missing = local_fetch.fetch_files(policy, [(Path({str(tmp_path / "here.bin")!r}).as_uri(), "MD5", 1024), ((Path({str(tmp_path)!r}) / "gone.bin").as_uri(), "MD5", 1024)])
try:
    with open_source((Path({str(tmp_path)!r}) / "gone.bin").as_uri(), policy):
        pass
except SourceError as exc:
    refused = f"{{type(exc).__name__}}: {{exc}}"
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("requests", "urllib3", "botocore", "boto3"))
print(json.dumps([found.digests["MD5"], missing, refused, loaded]))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60).stdout
    md5, missing, refused, loaded = json.loads(out.strip().splitlines()[-1])
    assert md5 == hashlib.md5(b"bytes to hash").hexdigest() and missing is None
    assert refused.startswith("SourceNotFound") and "no such file" in refused
    assert loaded == []


def test_without_syncfs_the_processes_segments_and_the_folders_they_made_are_fsynced(archive, few_files_suffice, monkeypatch):
    """Where syncfs(2) is missing, each segment a process wrote and the folders above it (which it may have made) are fsynced."""
    from glacier_pipelines.core.transfer import durable

    _submit(archive, 12)
    setup = _setup(archive, fetch_processes=2)
    monkeypatch.setattr(durable, "_syncfs", lambda folder: False)
    fsynced: list[str] = []
    real_fsync, real_open = durable.os.fsync, durable.os.open
    opened: dict[int, str] = {}

    def tracking_open(path, *args, **kwargs):
        fd = real_open(path, *args, **kwargs)
        opened[fd] = str(path)
        return fd

    def tracking_fsync(fd):
        fsynced.append(opened.get(fd, "?"))
        return real_fsync(fd)

    monkeypatch.setattr(durable.os, "open", tracking_open)
    monkeypatch.setattr(durable.os, "fsync", tracking_fsync)
    batch, report = _verify(archive, setup)
    assert report.verified == 12
    holders = {staging.holder(row.stage["path"]) for row in setup.catalog.batch_requests(batch)}
    folder = setup.staging_area.segment_folder("lab")
    assert holders <= set(fsynced)
    assert {str(folder), str(folder.parent), str(folder.parent.parent)} <= set(fsynced)
