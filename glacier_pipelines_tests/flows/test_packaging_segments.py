"""Package members appended to segments: synced once per group, read back by offset, removed with their last member."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.core import packaging as core_packaging
from glacier_pipelines.core import staging
from glacier_pipelines.core.constants import MiB
from glacier_pipelines.flows import archive as flow
from glacier_pipelines.flows import package_upload, packaging
from glacier_pipelines.resources.archive import archive_setup
from glacier_pipelines_tests.conftest import BUCKET, s3_client


def _setup(archive):
    r = archive.defs().resources
    return archive_setup(r["catalog"], r["archive_store"], r["sources"], r["request_transport"])


def _data(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest() * (10 + len(name))


def _submit(archive, *names):
    archive.submit(
        *(archive.request("lab", archive.file(n, _data(n)), _data(n), requestId=n, activateSmallFilePackaging=True) for n in names)
    )


def test_segment_members_read_back_by_offset_and_released_only_when_no_member_waits(tmp_path):
    writer = staging.SegmentWriter(tmp_path / "lab" / "segments")
    first, second = writer.append(b"first member"), writer.append(b"second")
    writer.seal()
    third = writer.append(b"in the next segment")
    writer.seal()
    segment = staging.in_segment(first)[0]
    assert staging.in_segment(second) == (segment, len(b"first member"), len(b"second"))
    assert staging.holder(third) != segment and staging.holder("/not/a/segment") == "/not/a/segment"
    assert [staging.read_bytes(None, p) for p in (first, second, third)] == [b"first member", b"second", b"in the next segment"]

    staging.delete(None, first)  # a member leaves with its segment, never alone
    assert staging.read_bytes(None, second) == b"second"
    assert staging.release_segments(None, [first], live=[second]) == []  # the second member still waits in it
    assert staging.release_segments(None, [first, second, third], live=[]) == sorted([segment, staging.holder(third)])
    with pytest.raises(FileNotFoundError):
        staging.read_bytes(None, second)


def test_a_crash_between_append_and_record_leaves_no_member_and_the_next_run_packs_every_file(archive, monkeypatch):
    """Killed after the bytes were appended, before the group was recorded: the requests stay CLAIMED, the
    next run fetches them again into a new segment, and the abandoned segment is swept once stale."""
    monkeypatch.setenv("GLACIER_STORAGE_CLASS", "STANDARD")  # so that the package can be read back here
    names = [f"c{i}" for i in range(5)]
    _submit(archive, *names)
    setup = _setup(archive)
    batch, _ = flow.claim_batch(setup.catalog, "lab", "run-1", 10, lambda run: True)

    def die(*_args, **_kwargs):
        raise SystemExit("killed between append and record")

    with monkeypatch.context() as patched, pytest.raises(SystemExit):
        patched.setattr(type(setup.catalog), "mark_verified_many", die)
        flow.verify_batch(setup, batch, "lab", "run-1")
    assert archive.catalog().status_counts("lab") == {t.CLAIMED: 5}
    segments = setup.staging_dir / "lab" / "segments"
    [abandoned] = segments.glob("*.seg")  # synced, but no request points at its bytes
    batch, _ = flow.claim_batch(setup.catalog, "lab", "run-2", 10, lambda run: True)
    assert flow.verify_batch(setup, batch, "lab", "run-2").verified == 5
    assert len(list(segments.glob("*.seg"))) == 2  # the abandoned one and this run's, synced once for the group
    assert flow.sweep_staging(setup, "lab") == []  # fresh: the age guard keeps what a run may be writing
    assert packaging.add_verified_members(setup, batch, "lab", "run-2") == 5
    report = packaging.close_due(setup, setup.packaging, "lab", "run-2", close_all=True)
    assert report.closed == 1 and not report.failed
    assert packaging.check_packages(setup, "lab").problems == []
    assert archive.catalog().status_counts("lab") == {t.SUCCESS: 5}

    [package] = report.packages
    key = package["url"].split("/", 3)[3]
    with tarfile.open(fileobj=io.BytesIO(s3_client().get_object(Bucket=BUCKET, Key=key)["Body"].read())) as tar:
        assert sorted(tar.extractfile(m).read() for m in tar.getmembers()) == sorted(_data(n) for n in names)
    assert [p.name for p in segments.glob("*.seg")] == [abandoned.name]  # this run's segment left with its package
    later = datetime.now(timezone.utc) + timedelta(days=2)
    assert flow.sweep_staging(setup, "lab", now=later) == [str(abandoned)]


def _seven_members_over_the_multipart_threshold(archive, monkeypatch):
    """Seven 1 MB members verified and waiting in the open package, which is over a 5 MiB multipart threshold: it streams."""
    monkeypatch.setenv("GLACIER_STORAGE_CLASS", "STANDARD")  # so that the package can be read back here
    blobs = {n: hashlib.sha256(n.encode()).digest() * (1_000_000 // 32) for n in (f"big{i}" for i in range(7))}
    archive.submit(*(archive.request("lab", archive.file(n, b), b, requestId=n, activateSmallFilePackaging=True) for n, b in blobs.items()))
    setup = _setup(archive)
    setup = dataclasses.replace(setup, upload=dataclasses.replace(setup.upload, multipart_threshold=5 * MiB, part_size=5 * MiB))
    batch, _ = flow.claim_batch(setup.catalog, "lab", "run-1", 10, lambda run: True)
    assert flow.verify_batch(setup, batch, "lab", "run-1").verified == 7
    assert packaging.add_verified_members(setup, batch, "lab", "run-1") == 7
    return setup, blobs


def test_a_package_over_the_multipart_threshold_goes_up_as_it_is_built_and_a_damaged_member_aborts_only_that_attempt(archive, monkeypatch):
    """Streamed while its tar is written: the stored package is that tar; a member found damaged mid-build stops the
    attempt (its multipart upload is aborted, none stays open), fails alone, and the rebuilt package holds the others."""
    setup, blobs = _seven_members_over_the_multipart_threshold(archive, monkeypatch)
    member = t.package_members.c
    with setup.catalog.engine.connect() as conn:
        locator = conn.execute(
            sa.select(member.staged_path).where(member.request_pk == setup.catalog.get_request("lab", "big6").pk)
        ).scalar()
    segment, offset, _ = staging.in_segment(locator)
    with open(segment, "r+b") as f:  # damaged after it was verified: found as the tar reaches it, well into the upload
        f.seek(offset)
        f.write(b"rot")

    report = packaging.close_due(setup, setup.packaging, "lab", "run-2", close_all=True)
    assert report.closed == 1 and [r for r, _ in report.failed] == ["big6"]
    assert packaging.check_packages(setup, "lab").problems == []
    assert archive.catalog().status_counts("lab") == {t.SUCCESS: 6, t.ERROR: 1}
    s3 = s3_client()
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []  # the stopped attempt's upload was aborted
    [package] = report.packages
    body = s3.get_object(Bucket=BUCKET, Key=package["url"].split("/", 3)[3])["Body"].read()
    assert len(body) == package["bytes"] > 5 * MiB
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert sorted(tar.extractfile(m).read() for m in tar.getmembers()) == sorted(b for n, b in blobs.items() if n != "big6")


def test_a_package_s3_cannot_answer_for_is_reported_unreachable_in_s3s_own_words(archive, monkeypatch):
    """package_integrity with S3 throttling the HEAD: no verdict, the members wait, and the reason quotes S3."""
    from botocore.exceptions import ClientError

    from glacier_pipelines.core import faults
    from glacier_pipelines.core.objectstore import S3Store, StoreError

    _submit(archive, "t0", "t1")
    setup = _setup(archive)
    batch, _ = flow.claim_batch(setup.catalog, "lab", "run-1", 10, lambda run: True)
    flow.verify_batch(setup, batch, "lab", "run-1")
    packaging.add_verified_members(setup, batch, "lab", "run-1")
    assert packaging.close_due(setup, setup.packaging, "lab", "run-1", close_all=True).closed == 1

    def throttled(self, key, **_kwargs):
        answer = ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "HeadObject")
        raise StoreError.wrap(answer, "HeadObject", key)

    monkeypatch.setattr(S3Store, "head", throttled)
    with pytest.raises(faults.ArchiveFault, match="could not be read back") as raised:
        packaging.check_packages(setup, "lab")
    report = raised.value.report
    [(url, reason)] = report.unreachable
    assert url.startswith(f"s3://{BUCKET}/") and report.problems == []
    assert "SlowDown" in reason and "reduce your request rate" in reason and not reason.startswith("StoreError"), reason
    assert t.SUCCESS not in archive.catalog().status_counts("lab")  # nothing answered without a verdict


def test_a_streamed_package_keeps_no_local_tar_and_one_whose_layout_drifts_stays_open_with_every_member(archive, monkeypatch):
    """No tar is written locally when the package streams; if the recorded offsets stop matching the bytes sent, the
    attempt's upload is aborted, no member is failed for it, and the next close stores them all."""
    setup, _ = _seven_members_over_the_multipart_threshold(archive, monkeypatch)
    real_write = core_packaging._HashingWriter.write
    calls = []

    def drifts(self, data):
        calls.append(len(data))
        written = real_write(self, data)
        if len(calls) == 3:
            self.size += 512  # as if a block had been written that the tar does not know of
        return written

    with monkeypatch.context() as patched:
        patched.setattr(core_packaging._HashingWriter, "write", drifts)
        report = packaging.close_due(setup, setup.packaging, "lab", "run-2", close_all=True)
    assert report.closed == 0 and len(report.failed) == 1 and "the tar's offset" in report.failed[0][1]
    assert archive.catalog().status_counts("lab") == {t.DELAYED: 7}  # no member blamed
    s3 = s3_client()
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0

    local_tars = []
    real_feed = package_upload.StreamedUpload.write

    def feed(self, data):  # while the tar is being sent: is any of it on the local disk?
        local_tars.extend((setup.staging_dir / "lab").glob("packages/*.tar*"))
        return real_feed(self, data)

    with monkeypatch.context() as patched:
        patched.setattr(package_upload.StreamedUpload, "write", feed)
        report = packaging.close_due(setup, setup.packaging, "lab", "run-3", close_all=True)
    assert report.closed == 1 and report.failed == []
    assert local_tars == [] and not list((setup.staging_dir / "lab").glob("packages/*.tar*"))  # not during, not after
    assert packaging.check_packages(setup, "lab").problems == []
    assert archive.catalog().status_counts("lab") == {t.SUCCESS: 7}


def test_members_are_answered_with_the_content_their_stage_kept_whether_or_not_the_check_passes_it(archive, monkeypatch):
    """package_integrity hands answer_package the contents it already read; a member it left out is read from its stage."""
    from glacier_pipelines.catalog.packages import PackageStore

    names = [f"a{i}" for i in range(4)]
    _submit(archive, *names)
    setup = _setup(archive)
    batch, _ = flow.claim_batch(setup.catalog, "lab", "run-1", 10, lambda run: True)
    flow.verify_batch(setup, batch, "lab", "run-1")
    packaging.add_verified_members(setup, batch, "lab", "run-1")
    assert packaging.close_due(setup, setup.packaging, "lab", "run-1", close_all=True).closed == 1
    [package] = PackageStore(setup.catalog).awaiting_check("lab")
    kept = {m["request_id"]: m["content"] for m in package["members"]}
    assert all(c and c["storeFileMetadata"]["storedFileUrl"] for c in kept.values())

    answer = PackageStore.answer_package
    left_out = package["members"][0]["request_pk"]

    def without_one(self, package_id, problems, contents=None):
        return answer(self, package_id, problems, {pk: c for pk, c in (contents or {}).items() if pk != left_out})

    monkeypatch.setattr(PackageStore, "answer_package", without_one)
    assert packaging.check_packages(setup, "lab").problems == []
    answered = {r["request_id"]: r["body"] for r in setup.catalog.unpublished_responses() if r["status"] == t.SUCCESS}
    assert {rid: body["content"] for rid, body in answered.items()} == kept


@pytest.mark.parametrize("directory", ["", "plain/dir", "a//b/./c/", "with space/é", "odd:*?chars"])
def test_a_member_is_named_from_its_directory_as_the_validated_request_has_it(archive, directory):
    """add_verified_members reads destinationDirectory from the stored body instead of validating the whole request again."""
    from glacier_pipelines.catalog.packages import PackageStore

    archive.submit(
        archive.request(
            "lab", archive.file("d", _data("d")), _data("d"), requestId="d", activateSmallFilePackaging=True, destinationDirectory=directory
        )
    )
    setup = _setup(archive)
    batch, _ = flow.claim_batch(setup.catalog, "lab", "run-1", 10, lambda run: True)
    flow.verify_batch(setup, batch, "lab", "run-1")
    [row] = setup.catalog.batch_requests(batch)
    assert packaging.add_verified_members(setup, batch, "lab", "run-1") == 1
    [package] = PackageStore(setup.catalog).open_packages("lab")
    [member] = PackageStore(setup.catalog).members(package["id"])
    assert member["name"] == core_packaging.member_name(row.request.destinationDirectory, row.request.checksum)
