"""Server-side moves and soft deletes without Dagster, over in-process moto.

The copy threshold is lowered to 5 MiB (S3's smallest part) so a 12 MiB object takes the
multipart UploadPartCopy path. botocore event hooks count every CopyObject per key and inject
crashes, so "never twice" is counted, not assumed.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections import Counter

import pytest
from botocore.exceptions import ClientError

from glacier_pipelines.core import pricing
from glacier_pipelines.core.moves import ChecksumMismatch, MoveError
from glacier_pipelines.flows import moves as flow
from glacier_pipelines.resources.lifecycle import LifecycleResource
from glacier_pipelines_tests.conftest import BUCKET, MiB, s3_client

CONFIG = """
[tenants.lab]
sources = ["s3://uploads/lab/"]

[[tenants.lab.rules]]
name = "trash"
prefix = "trash/"
transitions = [{days = 30, storage_class = "GLACIER"}, {days = 180, storage_class = "DEEP_ARCHIVE"}]
"""


class Crash(RuntimeError):
    """The process dying in the middle of a move."""


class CopyCounter:
    """Counts CopyObject / UploadPartCopy calls that reached S3, per key; can crash before or after the Nth CopyObject."""

    def __init__(self, client, crash_before: int | None = None, crash_after: int | None = None):
        self.copies: Counter[str] = Counter()
        self.part_copies: Counter[str] = Counter()
        self.calls = 0
        self.crash_before, self.crash_after = crash_before, crash_after
        self._key: str | None = None
        events = client.meta.events
        events.register("provide-client-params.s3.CopyObject", self._before)
        events.register("after-call.s3.CopyObject", self._after)
        events.register("provide-client-params.s3.UploadPartCopy", lambda params, **_: self.part_copies.update([params["Key"]]))

    def _before(self, params, **_):
        self.calls += 1
        self._key = params["Key"]
        if self.crash_before is not None and self.calls == self.crash_before:
            raise Crash(f"crash before CopyObject #{self.calls}")

    def _after(self, http_response=None, **_):
        if http_response is not None and http_response.status_code == 200:
            self.copies[self._key] += 1
        if self.crash_after is not None and self.calls == self.crash_after:
            raise Crash(f"crash after CopyObject #{self.calls}")


@pytest.fixture
def moves(archive, tmp_path):
    """A MoveSetup on the archive bucket: lab may also move from s3://uploads/lab/; copies above 5 MiB are multipart."""
    path = tmp_path / "lifecycle.toml"
    path.write_text(CONFIG)
    s3_client().create_bucket(Bucket="uploads")
    r = archive.defs().resources

    def make(**fields):
        resource = LifecycleResource(**{"config_path": str(path), "copy_threshold_mb": 5, "copy_part_size_mb": 5, **fields})
        return resource.setup(r["catalog"], r["archive_store"])

    return make


def put(key: str, data: bytes, bucket: str = BUCKET, **extra):
    s3_client().put_object(Bucket=bucket, Key=key, Body=data, **extra)
    return f"s3://{bucket}/{key}"


def head(key: str, bucket: str = BUCKET):
    return s3_client().head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")


def tags_of(key: str, bucket: str = BUCKET) -> dict[str, str]:
    # moto answers GetObjectTagging only for readable objects (AWS does for archived ones too): restore first.
    s3 = s3_client()
    if (s3.head_object(Bucket=bucket, Key=key).get("StorageClass") or "STANDARD") in ("GLACIER", "DEEP_ARCHIVE"):
        s3.restore_object(Bucket=bucket, Key=key, RestoreRequest={"Days": 1})
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}


def b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_small_object_moves_in_place_keeping_metadata_tags_and_encryption(archive, moves):
    setup = moves()
    counter = CopyCounter(setup.s3)
    data = b"an application's upload" * 10
    url = put(
        "archive/lab/app/report.pdf",
        data,
        Metadata={"owner": "alice"},
        Tagging="project=x&keep=yes",
        ContentType="application/pdf",
        ContentDisposition="inline",
        ServerSideEncryption="AES256",
    )
    report = flow.move(setup, flow.MoveRequest(tenant="lab", url=url))
    assert [o.status for o in report.outcomes] == [flow.MOVED]
    out = report.outcomes[0]
    assert (out.s3_checksum, out.checksum_algorithm) == (b64sha(data), "SHA256 (FULL_OBJECT)")
    assert out.sha256 == hashlib.sha256(data).hexdigest() and out.parts == 0 and out.copy_requests == 1
    assert counter.copies == {"archive/lab/app/report.pdf": 1}
    h = head("archive/lab/app/report.pdf")
    assert h["StorageClass"] == "DEEP_ARCHIVE" and h["Metadata"] == {"owner": "alice"}
    assert (h["ContentType"], h["ServerSideEncryption"], h["ChecksumSHA256"]) == ("application/pdf", "AES256", b64sha(data))
    assert tags_of("archive/lab/app/report.pdf") == {"project": "x", "keep": "yes"}
    # Recorded like any archived object: class, size, both checksums, found by content.
    obj = archive.catalog().find_object("lab", "SHA-256", hashlib.sha256(data).hexdigest())
    assert (obj.key, obj.storage_class, obj.size, obj.s3_checksum) == (
        "archive/lab/app/report.pdf",
        "DEEP_ARCHIVE",
        len(data),
        b64sha(data),
    )
    row = setup.store.rows("lab")[0]
    assert (row["status"], row["verification"], row["checksum_algorithm"]) == ("DONE", "trust-s3", "SHA256 (FULL_OBJECT)")
    # The ETag (a plain MD5 here) and S3's SHA-256 checked what the caller could know, without reading a byte.
    assert report.estimate["total"] > 0 and any("copy requests into DEEP_ARCHIVE" in line["item"] for line in report.estimate["lines"])


def test_large_object_takes_multipart_copy_and_keeps_everything(archive, moves):
    setup = moves()
    counter = CopyCounter(setup.s3)
    data = os.urandom(12 * MiB + 3)
    url = put(
        "archive/lab/big.bin",
        data,
        Metadata={"origin": "scanner-7"},
        Tagging="size=big",
        ContentType="application/x-raw",
        CacheControl="no-cache",
        ServerSideEncryption="AES256",
    )
    report = flow.move(setup, flow.MoveRequest(tenant="lab", url=url, storage_class="GLACIER"))
    out = report.outcomes[0]
    assert out.status == flow.MOVED and out.parts == 3 and out.copy_requests == 5
    assert counter.copies == {} and counter.part_copies == {"archive/lab/big.bin": 3}
    assert out.checksum_algorithm == "SHA256 (COMPOSITE)" and out.s3_checksum.endswith("-3")
    parts = [hashlib.sha256(data[i : i + 5 * MiB]).digest() for i in range(0, len(data), 5 * MiB)]
    assert out.s3_checksum == base64.b64encode(hashlib.sha256(b"".join(parts)).digest()).decode() + "-3"
    assert out.sha256 is None and any("composite of parts" in m for m in out.messages)  # trust-s3 cannot know the plain SHA-256
    h = head("archive/lab/big.bin")
    assert (h["StorageClass"], h["Metadata"], h["ContentType"], h["CacheControl"], h["ServerSideEncryption"]) == (
        "GLACIER",
        {"origin": "scanner-7"},
        "application/x-raw",
        "no-cache",
        "AES256",
    )
    assert tags_of("archive/lab/big.bin") == {"size": "big"}
    assert not s3_client().list_multipart_uploads(Bucket=BUCKET).get("Uploads")


def test_large_object_streamed_gets_its_sha256_and_the_composite_checked(archive, moves):
    setup = moves()
    data = os.urandom(11 * MiB)
    url = put("archive/lab/streamed.bin", data)
    out = flow.move(
        setup, flow.MoveRequest(tenant="lab", url=url, verification="stream", checksum=f"SHA-256:{hashlib.sha256(data).hexdigest()}")
    ).outcomes[0]
    assert out.status == flow.MOVED and out.parts == 3
    assert out.sha256 == hashlib.sha256(data).hexdigest()
    assert {"reference": "announced", "algorithm": "SHA-256", "checksum": out.sha256} in out.verified_against
    assert "S3's composite SHA-256 of the copy matches the streamed parts" in out.messages
    assert archive.catalog().find_object("lab", "SHA-256", out.sha256).storage_class == "DEEP_ARCHIVE"


def test_object_already_in_the_target_class_is_a_no_op(archive, moves):
    setup = moves()
    data = b"already deep"
    url = put("archive/lab/deep.txt", data, StorageClass="DEEP_ARCHIVE", ChecksumAlgorithm="SHA256")
    counter = CopyCounter(setup.s3)
    first = flow.move(setup, flow.MoveRequest(tenant="lab", url=url)).outcomes[0]
    assert first.status == flow.SKIPPED and "no copy made" in first.messages[0]
    assert archive.catalog().find_object("lab", "SHA-256", hashlib.sha256(data).hexdigest()) is not None  # recorded all the same
    second = flow.move(setup, flow.MoveRequest(tenant="lab", url=url)).outcomes[0]
    assert second.status == flow.SKIPPED and second.messages == ["already in DEEP_ARCHIVE and in the catalog"]
    assert counter.calls == 0


def test_object_that_does_not_exist_is_a_clear_error(archive, moves):
    setup = moves()
    with pytest.raises(MoveError, match=r"s3://archive-test/archive/lab/nope.txt does not exist: no object there and none under it"):
        flow.move(setup, flow.MoveRequest(tenant="lab", url=f"s3://{BUCKET}/archive/lab/nope.txt"))
    with pytest.raises(MoveError, match="does not exist"):
        flow.move_object(
            setup,
            tenant="lab",
            bucket=BUCKET,
            key="archive/lab/nope.txt",
            dest_bucket=BUCKET,
            dest_key="archive/lab/nope.txt",
            storage_class="DEEP_ARCHIVE",
            verification="trust-s3",
        )


def test_a_tenant_moves_only_its_own_prefix_and_granted_sources(archive, moves):
    setup = moves()
    put("archive/museum/m.txt", b"museum's")
    put("other/x", b"x", bucket="uploads")
    for url in (
        f"s3://{BUCKET}/archive/museum/m.txt",
        f"s3://{BUCKET}/archive/",
        f"s3://{BUCKET}/archive/lab2/",
        "s3://uploads/other/x",
        "s3://uploads/",
    ):
        with pytest.raises(
            MoveError,
            match=r"tenant lab may not move .*: only objects under "
            r"s3://archive-test/archive/lab/, s3://uploads/lab/",
        ):
            flow.move(setup, flow.MoveRequest(tenant="lab", url=url))
    assert head("archive/museum/m.txt").get("StorageClass") is None  # untouched


def test_prefix_of_many_objects_resumes_after_crashes_and_copies_each_once(archive, moves):
    keys = [f"archive/lab/trash/{i:03d}.dat" for i in range(30)]
    for i, key in enumerate(keys):
        put(key, f"object {i}".encode() * 50)
    put("archive/lab/trash/folder/", b"")  # a folder marker is not a file
    request = flow.MoveRequest(tenant="lab", url=f"s3://{BUCKET}/archive/lab/trash/")
    copies: Counter[str] = Counter()

    # Run 1 dies after S3 did the 8th copy but before it was recorded; run 2 dies before the 20th copy is sent.
    for crash in ({"crash_after": 8}, {"crash_before": 12}):
        setup = moves()
        counter = CopyCounter(setup.s3, **crash)
        with pytest.raises(Crash):
            flow.move(setup, request)
        copies += counter.copies
    setup = moves()
    counter = CopyCounter(setup.s3)
    report = flow.move(setup, request)
    copies += counter.copies
    assert copies == {key: 1 for key in keys}  # every object copied exactly once over the three runs
    assert report.count(flow.FAILED) == 0
    assert {head(k)["StorageClass"] for k in keys} == {"DEEP_ARCHIVE"}
    assert len(archive.catalog().objects("lab")) == 30
    rows = setup.store.rows("lab")
    assert len(rows) == 30 and {r["status"] for r in rows} == {"DONE"}
    # The object copied just before the first crash was found in its class by the next run and recorded, not copied again.
    adopted = [r["source_key"] for r in rows if any("no copy made" in m for m in r["messages"])]
    assert adopted == [keys[7]]
    again = flow.move(moves(), request)
    assert {o.status for o in again.outcomes} == {flow.SKIPPED}


def test_max_objects_bounds_a_run_and_the_rest_waits(archive, moves):
    for i in range(5):
        put(f"archive/lab/b/{i}", b"x" * (i + 1))
    request = flow.MoveRequest(tenant="lab", url=f"s3://{BUCKET}/archive/lab/b/", max_objects=2)
    first = flow.move(moves(), request)
    assert (first.count(flow.MOVED), first.left_for_next_run) == (2, 3)
    second = flow.move(moves(), flow.MoveRequest(tenant="lab", url=f"s3://{BUCKET}/archive/lab/b/"))
    assert (second.count(flow.MOVED), second.count(flow.SKIPPED)) == (3, 2)


def _corrupt_multipart(key: str, good: bytes) -> bytes:
    """An object uploaded in two parts whose bytes differ from ``good`` (so its ETag is no MD5)."""
    bad = bytearray(good)
    bad[7] ^= 0xFF
    s3 = s3_client()
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)
    parts = []
    for n, start in enumerate((0, 5 * MiB), 1):
        resp = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload["UploadId"], PartNumber=n, Body=bytes(bad[start : start + 5 * MiB]))
        parts.append({"PartNumber": n, "ETag": resp["ETag"]})
    s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts})
    return bytes(bad)


def test_verify_by_streaming_catches_a_corrupted_object(archive, moves):
    setup = moves(copy_threshold_mb=64)
    good = os.urandom(6 * MiB)
    md5 = hashlib.md5(good).hexdigest()
    _corrupt_multipart("archive/lab/rot.bin", good)
    counter = CopyCounter(setup.s3)
    with pytest.raises(ChecksumMismatch, match=rf"MD5 is [0-9a-f]{{32}}, the announced checksum says {md5}"):
        flow.move_object(
            setup,
            tenant="lab",
            bucket=BUCKET,
            key="archive/lab/rot.bin",
            dest_bucket=BUCKET,
            dest_key="archive/lab/rot.bin",
            storage_class="DEEP_ARCHIVE",
            verification="stream",
            announced=("MD5", md5),
        )
    report = flow.move(
        setup, flow.MoveRequest(tenant="lab", url=f"s3://{BUCKET}/archive/lab/rot.bin", verification="stream", checksum=f"md5:{md5}")
    )
    assert report.outcomes[0].status == flow.FAILED and "the announced checksum says" in report.outcomes[0].messages[0]
    assert counter.calls == 0 and head("archive/lab/rot.bin").get("StorageClass") is None  # not copied
    assert archive.catalog().objects("lab") == []  # and not recorded as archived
    assert setup.store.rows("lab")[0]["status"] == "FAILED"
    # The trade-off: trusting S3 cannot check an MD5 that S3 does not hold (a multipart ETag is no MD5) and says so.
    trusted = flow.move(setup, flow.MoveRequest(tenant="lab", url=f"s3://{BUCKET}/archive/lab/rot.bin", checksum=f"MD5:{md5}")).outcomes[0]
    assert trusted.status == flow.MOVED and trusted.verified_against == []
    assert any("the announced checksum (MD5) was not verified" in m for m in trusted.messages)


def test_trusting_s3_still_catches_what_s3_knows_without_reading(archive, moves):
    setup = moves()
    good = b"the original bytes"
    put("archive/lab/single.txt", good + b"!")  # single part, unencrypted: its ETag is the MD5 of what S3 holds
    with pytest.raises(
        MoveError,
        match=r"the announced checksum says MD5 [0-9a-f]{32}, "
        r"S3's ETag \(the MD5 of a single-part object\) says",
    ):
        flow.move_object(
            setup,
            tenant="lab",
            bucket=BUCKET,
            key="archive/lab/single.txt",
            dest_bucket=BUCKET,
            dest_key="archive/lab/single.txt",
            storage_class="DEEP_ARCHIVE",
            verification="trust-s3",
            announced=("MD5", hashlib.md5(good).hexdigest()),
        )
    ok = flow.move(
        setup,
        flow.MoveRequest(
            tenant="lab", url=f"s3://{BUCKET}/archive/lab/single.txt", checksum=f"SHA-256:{hashlib.sha256(good + b'!').hexdigest()}"
        ),
    ).outcomes[0]
    assert ok.verified_against == [{"reference": "announced", "algorithm": "SHA-256", "checksum": hashlib.sha256(good + b"!").hexdigest()}]


def test_objects_from_a_granted_source_move_onto_the_archive_key(archive, moves):
    setup = moves()
    data = b"uploaded by the app"
    put("lab/2024/photo.jpg", data, bucket="uploads", Tagging="a=b")
    report = flow.move(setup, flow.MoveRequest(tenant="lab", url="s3://uploads/lab/2024/", destination="archive"))
    out = report.outcomes[0]
    assert (out.status, out.destination) == (flow.MOVED, f"s3://{BUCKET}/archive/lab/2024/photo.jpg")
    assert head("archive/lab/2024/photo.jpg")["StorageClass"] == "DEEP_ARCHIVE"
    assert "Contents" not in s3_client().list_objects_v2(Bucket="uploads")  # moved, not copied
    assert tags_of("archive/lab/2024/photo.jpg") == {"a": "b"}
    assert archive.catalog().objects("lab")[0].key == "archive/lab/2024/photo.jpg"


def test_archived_objects_cannot_be_copied_without_a_restore(archive, moves):
    setup = moves()
    put("archive/lab/cold.bin", b"cold", StorageClass="GLACIER")
    report = flow.move(setup, flow.MoveRequest(tenant="lab", url=f"s3://{BUCKET}/archive/lab/cold.bin", storage_class="DEEP_ARCHIVE"))
    assert report.outcomes[0].status == flow.FAILED
    assert "S3 copies such objects only from a restored copy" in report.outcomes[0].messages[0]


def test_package_manifests_stay_in_standard(archive, moves):
    put("archive/lab/packages/p1.tar", b"tar bytes")
    put("archive/lab/packages/p1.tar.manifest.jsonl", b"{}\n")
    report = flow.move(moves(), flow.MoveRequest(tenant="lab", url=f"s3://{BUCKET}/archive/lab/packages/"))
    by_key = {o.source.rsplit("/", 1)[1]: o for o in report.outcomes}
    assert by_key["p1.tar"].status == flow.MOVED
    assert by_key["p1.tar.manifest.jsonl"].status == flow.SKIPPED
    assert head("archive/lab/packages/p1.tar.manifest.jsonl").get("StorageClass") is None


def test_cost_estimate_names_requests_overhead_and_minimum_duration():
    prices = pricing.load_pricing("us-east-1")
    est = pricing.estimate_move(prices, storage_class="DEEP_ARCHIVE", size_bytes=1024**3, objects=1000, copy_requests=1000)
    items = [line.item for line in est.lines]
    assert items[0].startswith("copy requests into DEEP_ARCHIVE (1,000 requests / 1,000 x $0.05 per 1,000")
    assert any("per-object overhead" in i and "8 KB at STANDARD" in i and "32 KB at DEEP_ARCHIVE" in i for i in items)
    assert any(i.startswith("minimum storage duration of DEEP_ARCHIVE: 180 days") for i in items)
    assert est.lines[0].usd == pytest.approx(0.05)
    assert est.lines[-1].usd == pytest.approx(0.00099 * 180 / 30)
    early = pricing.estimate_move(
        prices,
        storage_class="DEEP_ARCHIVE",
        size_bytes=1024**3,
        objects=1,
        source_class="GLACIER_IR",
        source_days_stored=30,
        streamed_bytes=1024**3,
    )
    assert any(
        line.item.startswith("early deletion of the GLACIER_IR copies after 30 days") and line.usd == pytest.approx(0.004 * 60 / 30)
        for line in early.lines
    )
    assert any(line.item.startswith("retrieval of the streamed bytes from GLACIER_IR") for line in early.lines)


def _archive_files(archive, files: dict[str, bytes], tenant: str = "lab") -> None:
    """Archive files through the archive path's own steps (no Dagster run)."""
    from glacier_pipelines.flows import archive as archive_flow
    from glacier_pipelines.resources.archive import archive_setup

    archive.submit(*[archive.request(tenant, archive.file(rid, data), data, requestId=rid) for rid, data in files.items()])
    r = archive.defs().resources
    setup = archive_setup(r["catalog"], r["archive_store"], r["sources"], r["request_transport"])
    batch, _ = archive_flow.claim_batch(setup.catalog, tenant, "setup", 100, lambda run: True)
    archive_flow.verify_batch(setup, batch, tenant, "setup")
    archive_flow.store_batch(setup, batch, tenant, "setup")
    archive_flow.check_batch(setup, batch)  # the blocking check answers the stored requests
    assert {row["status"] for row in archive.report(tenant).values()} == {"SUCCESS"}


def test_trash_marks_the_file_and_moves_it_under_the_trash_prefix_in_one_copy(archive, moves, monkeypatch):
    monkeypatch.setenv("GLACIER_STORAGE_CLASS", "STANDARD")  # readable, as an application's files are
    data = b"a file the user deleted"
    _archive_files(archive, {"doomed": data, "kept": b"another file"})
    setup = moves()
    counter = CopyCounter(setup.s3)
    md5 = hashlib.md5(data).hexdigest()
    key = f"archive/lab/dir/{md5}"
    out = flow.trash(setup, "lab", "doomed")
    trash_key = f"archive/lab/trash/dir/{md5}"
    assert (out.status, out.destination) == (flow.MOVED, f"s3://{BUCKET}/{trash_key}")
    assert counter.copies == {trash_key: 1}
    assert head(trash_key).get("StorageClass", "STANDARD") == "STANDARD"  # the trash copy keeps its class
    assert head(trash_key)["Metadata"]["source-checksum"] == md5  # and its metadata
    with pytest.raises(ClientError, match="404"):
        head(key)  # the original key is gone
    # The catalog: the object follows its bytes; the request still names it; content lookups no longer find it.
    report = archive.report("lab")
    assert report["doomed"]["status"] == "SUCCESS" and report["doomed"]["storedFileUrl"] == f"s3://{BUCKET}/{trash_key}"
    assert archive.catalog().find_object("lab", "MD5", md5) is None
    row = [r for r in setup.store.rows("lab") if r["kind"] == "TRASH"][0]
    assert (row["request_id"], row["status"], row["checksums"]["MD5"]) == ("doomed", "DONE", md5)
    # The S3 SHA-256 of the copy was checked against the catalog's, without reading the object.
    assert {"reference": "catalog", "algorithm": "SHA-256", "checksum": hashlib.sha256(data).hexdigest()} in out.verified_against
    # The lifecycle rule of the trash prefix is what transitions and expires it from here.
    assert setup.lifecycle.desired(BUCKET)[0]["Filter"]["Prefix"] == setup.lifecycle.tenant("lab").trash_key_prefix
    assert trash_key.startswith(setup.lifecycle.tenant("lab").trash_key_prefix)
    again = flow.trash(setup, "lab", "doomed")
    assert again.status == flow.SKIPPED and "already in the trash" in again.messages[0]
    assert counter.calls == 1
    # New identical content is archived anew, not deduplicated onto the trashed copy.
    archive.submit(archive.request("lab", archive.file("again", data), data, requestId="again"))
    _archive_files(archive, {})
    assert archive.report("lab")["again"]["storedFileUrl"] == f"s3://{BUCKET}/{key}"


def test_trash_of_a_shared_object_waits_for_its_last_request(archive, moves, monkeypatch):
    monkeypatch.setenv("GLACIER_STORAGE_CLASS", "STANDARD")
    data = b"the same bytes twice"
    _archive_files(archive, {"first": data})
    _archive_files(archive, {"second": data})  # deduplicated onto the first's object
    setup = moves()
    one = flow.trash(setup, "lab", "first")
    assert one.status == flow.SKIPPED and "still used by request(s) second" in one.messages[0]
    two = flow.trash(setup, "lab", "second")
    assert two.status == flow.MOVED and "/trash/" in two.destination


def test_trash_refusals_are_clear(archive, moves):
    _archive_files(archive, {"deep": b"in deep archive"})  # the fixture's class: DEEP_ARCHIVE
    setup = moves()
    with pytest.raises(MoveError, match="tenant lab has no archived file with request id 'nope'"):
        flow.trash(setup, "lab", "nope")
    with pytest.raises(MoveError, match="tenant museum has no archived file with request id 'deep'"):
        flow.trash(setup, "museum", "deep")  # another tenant's file is not found, in the same words
    with pytest.raises(MoveError, match=r"is in DEEP_ARCHIVE: S3 copies such objects only from a restored copy"):
        flow.trash(setup, "lab", "deep")


def test_a_copy_that_failed_its_check_is_never_recorded_by_a_rerun(archive, moves, monkeypatch):
    from glacier_pipelines.core import moves as core_moves

    setup = moves()
    url = put("archive/lab/odd.bin", b"bytes S3 will report wrongly")

    def wrong(copy, **_):
        raise ChecksumMismatch("s3://archive-test/archive/lab/odd.bin: S3 reports SHA-256 0000 for the copy, the bytes have 1111")

    with monkeypatch.context() as patched:
        patched.setattr(core_moves, "check_copy", wrong)
        first = flow.move(setup, flow.MoveRequest(tenant="lab", url=url, verification="stream")).outcomes[0]
    assert first.status == flow.FAILED and "S3 reports SHA-256 0000" in first.messages[0]
    assert head("archive/lab/odd.bin")["StorageClass"] == "DEEP_ARCHIVE"  # the copy happened, in place
    again = flow.move(moves(), flow.MoveRequest(tenant="lab", url=url)).outcomes[0]
    assert again.status == flow.FAILED and "an earlier move of this object failed its verification" in again.messages[0]
    assert archive.catalog().objects("lab") == []


def test_a_move_sends_s3_only_the_requests_it_needs(archive, moves):
    """Counted per operation: one HEAD for the plan, one for the move (two when the destination is another key), one
    CopyObject (or create, part copies, complete) and the ledger's PUT; nothing read twice, no HEAD around a copy."""
    setup = moves()
    calls: Counter[str] = Counter()
    setup.s3.meta.events.register("after-call.s3.*", lambda event_name=None, **_: calls.update([event_name.split(".")[-1]]))
    put("archive/lab/a.bin", b"x" * 1000, Tagging="a=b")
    put("archive/lab/big.bin", os.urandom(12 * MiB + 3), Tagging="a=b")
    put("lab/src.bin", b"y" * 1000, bucket="uploads")
    calls.clear()
    flow.move(setup, flow.MoveRequest(tenant="lab", url=f"s3://{BUCKET}/archive/lab/a.bin"))
    assert calls == {"HeadObject": 2, "CopyObject": 1, "PutObject": 1}
    calls.clear()
    flow.move(setup, flow.MoveRequest(tenant="lab", url=f"s3://{BUCKET}/archive/lab/big.bin", verification="stream"))
    # moto answers CompleteMultipartUpload without a checksum: one HEAD reads it (AWS answers it, and that HEAD goes)
    assert calls == {
        "HeadObject": 3,
        "GetObject": 1,
        "GetObjectTagging": 1,
        "CreateMultipartUpload": 1,
        "UploadPartCopy": 3,
        "CompleteMultipartUpload": 1,
        "PutObject": 1,
    }
    calls.clear()
    flow.move(setup, flow.MoveRequest(tenant="lab", url="s3://uploads/lab/src.bin", destination="archive"))
    assert calls == {"HeadObject": 3, "CopyObject": 1, "DeleteObject": 1, "PutObject": 1}


def test_moves_run_the_same_over_local_folders(archive, moves, tmp_path):
    """The flow calls the storage port only: over LocalStores (one folder per bucket) a prefix moves as it does on S3,
    a source's object onto the archive key included, and the large one in parts whose composite is the streamed one's."""
    import dataclasses

    from glacier_pipelines.core.objectstore import LocalStore

    folders = {bucket: LocalStore(tmp_path / bucket, durable=False) for bucket in (BUCKET, "uploads")}
    setup = dataclasses.replace(moves(), stores=folders.__getitem__)
    small, big = b"a small local file" * 10, os.urandom(12 * MiB + 3)
    folders[BUCKET].put("archive/lab/local/small.txt", small)
    folders[BUCKET].put("archive/lab/local/big.bin", big)
    folders["uploads"].put("lab/in/granted.txt", b"granted")
    report = flow.move(setup, flow.MoveRequest(tenant="lab", url=f"s3://{BUCKET}/archive/lab/local/", verification="stream"))
    by_key = {o.source.rsplit("/", 1)[1]: o for o in report.outcomes}
    assert {k: (o.status, o.parts) for k, o in by_key.items()} == {"big.bin": (flow.MOVED, 3), "small.txt": (flow.MOVED, 0)}
    assert by_key["small.txt"].s3_checksum == b64sha(small) and by_key["big.bin"].sha256 == hashlib.sha256(big).hexdigest()
    assert "S3's composite SHA-256 of the copy matches the streamed parts" in by_key["big.bin"].messages
    for key, data in (("small.txt", small), ("big.bin", big)):
        h = folders[BUCKET].head(f"archive/lab/local/{key}")
        assert (h.storage_class, h.size) == ("DEEP_ARCHIVE", len(data))
    assert list(folders[BUCKET].uploads()) == []  # the copy in parts completed
    moved = flow.move(setup, flow.MoveRequest(tenant="lab", url="s3://uploads/lab/in/granted.txt", destination="archive")).outcomes[0]
    assert (moved.status, moved.destination) == (flow.MOVED, f"s3://{BUCKET}/archive/lab/in/granted.txt")
    assert [e.key for e in folders["uploads"].list()] == []  # the source went once the copy was recorded
    assert any(e.key.startswith("archive/lab/ledger/") for e in folders[BUCKET].list("archive/lab/"))
    again = flow.move(setup, flow.MoveRequest(tenant="lab", url=f"s3://{BUCKET}/archive/lab/local/"))
    assert {o.status for o in again.outcomes} == {flow.SKIPPED}  # already there: nothing copied twice
