"""archive_job through Dagster on in-process moto: verified, stored, checked, answered."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib

import dagster as dg
import pytest

from glacier_pipelines_tests.conftest import BUCKET, MiB, archived_keys, image_bytes, materializations, responses_of, s3_client


def test_batch_of_mixed_files_is_archived_verified_and_answered(archive, instance):
    png, jpeg, gif = image_bytes("PNG", (37, 23)), image_bytes("JPEG", (640, 480)), image_bytes("GIF", (3, 700))
    big = os.urandom(11 * MiB + 123)  # above the 5 MiB threshold: 3 parts of a multipart upload
    text = b"plain text, not an image\n" * 100
    reqs = [
        archive.request("lab", archive.file("a.png", png), png, "MD5", computeImageSize=True, destinationDirectory="img/2026"),
        archive.request("lab", archive.file("b.jpg", jpeg), jpeg, "SHA-1", computeImageSize=True),
        archive.request("lab", archive.file("c.gif", gif), gif, "SHA-256", computeImageSize=True),
        archive.request("lab", archive.file("big.bin", big), big, "SHA-512"),
        archive.request("lab", archive.file("notes.txt", text), text, "MD5", computeImageSize=True),
    ]
    archive.submit(*reqs)

    result = archive.run("lab", instance)

    assert result.success
    report = archive.report("lab")
    assert {r["status"] for r in report.values()} == {"SUCCESS"}
    a, b, c, d, e = (report[r["requestId"]] for r in reqs)
    assert (a["widthInPx"], a["heightInPx"]) == (37, 23)
    assert (b["widthInPx"], b["heightInPx"]) == (640, 480)
    assert (c["widthInPx"], c["heightInPx"]) == (3, 700)
    assert d["widthInPx"] is None and d["fileSizeInBytes"] == len(big)
    assert e["widthInPx"] is None and any("not an image" in m for m in e["messages"])
    assert a["storedFileUrl"] == f"s3://{BUCKET}/archive/lab/img/2026/{hashlib.md5(png).hexdigest()}"

    s3 = s3_client()
    for row in report.values():
        key = row["storedFileUrl"].split("/", 3)[3]
        head = s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
        assert head["StorageClass"] == "DEEP_ARCHIVE"
        assert head["ContentLength"] == row["fileSizeInBytes"]
    head = s3.head_object(Bucket=BUCKET, Key=d["storedFileUrl"].split("/", 3)[3], ChecksumMode="ENABLED")
    parts = [big[i : i + 5 * MiB] for i in range(0, len(big), 5 * MiB)]
    crcs = b"".join(zlib.crc32(p).to_bytes(4, "big") for p in parts)  # multipart parts carry CRC32 (docs/architecture.md)
    composite = base64.b64encode(zlib.crc32(crcs).to_bytes(4, "big")).decode()
    assert head["ChecksumCRC32"].split("-")[0] == composite
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []

    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert sorted(checks) == ["checksum_integrity", "package_integrity"] and all(c.passed for c in checks.values())
    assert checks["checksum_integrity"].metadata["objects_checked"].value == 5
    meta = materializations(result)
    assert meta["ingest_batch"]["requests"] == 5
    assert meta["verified_files"]["verified"] == 5 and meta["verified_files"]["failed"] == 0
    assert meta["glacier_objects"]["stored"] == 5 and meta["glacier_objects"]["bytes_stored"] == sum(
        len(x) for x in (png, jpeg, gif, big, text)
    )

    responses = responses_of(archive)
    assert set(responses) == {r["requestId"] for r in reqs}
    body = responses[reqs[0]["requestId"]]
    assert body["status"] == "SUCCESS" and body["headers"]["regards.tenant"] == "lab"
    meta_file = body["content"]["storeFileMetadata"]
    assert meta_file == {
        "checksum": reqs[0]["checksum"],
        "algorithm": "MD5",
        "storedFileUrl": a["storedFileUrl"],
        "fileSizeInBytes": len(png),
        "heightInPx": 23,
        "widthInPx": 37,
    }
    assert "widthInPx" not in responses[reqs[3]["requestId"]]["content"]["storeFileMetadata"]
    assert body["content"]["fileProcessingMetadata"]["filename"] == "a.png"
    assert responses_of(archive) == {}  # published once, never again


def test_one_bad_request_never_blocks_the_others(archive, instance, http_source, tmp_path):
    http_root, base = http_source
    good = b"good bytes" * 50
    (http_root / "present.txt").write_bytes(good)
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"secret")
    corrupted_url = archive.file("corrupt.bin", b"original content")
    corrupted = archive.request("lab", corrupted_url, b"original content", requestId="corrupted")
    (archive.sources / "corrupt.bin").write_bytes(b"originaL content")  # bit rot after the checksum was taken
    reqs = [
        archive.request("lab", f"{base}/present.txt", good, "SHA-256", requestId="good-http"),
        archive.request("lab", archive.file("ok.txt", good), good, requestId="good-file"),
        archive.request("lab", archive.file("wrong.txt", b"abc"), b"abd", requestId="mismatch"),
        corrupted,
        archive.request("lab", f"{base}/missing.txt", b"", requestId="http-404"),
        archive.request("lab", f"{base}/slow", b"", requestId="http-timeout"),
        archive.request("lab", f"{base}/truncated", b"", requestId="http-truncated"),
        archive.request("lab", outside.as_uri(), b"secret", requestId="outside-roots"),
        archive.request("lab", "http://169.254.169.254/latest/meta-data/", b"", requestId="metadata-endpoint"),
    ]
    archive.submit(*reqs)

    result = archive.run("lab", instance)

    assert result.success  # failures are per request, not per run
    report = archive.report("lab")
    assert report["good-http"]["status"] == report["good-file"]["status"] == "SUCCESS"
    # The same bytes announced with two algorithms in one batch: stored once.
    assert report["good-file"]["storedFileUrl"] == report["good-http"]["storedFileUrl"]
    assert report["good-file"]["deduplicated"]
    expected_words = {
        "mismatch": "checksum mismatch",
        "corrupted": "checksum mismatch",
        "http-404": "404",
        "http-timeout": "time",
        "http-truncated": "truncated",
        "outside-roots": "allowed",
        "metadata-endpoint": "link-local",
    }
    for request_id, word in expected_words.items():
        row = report[request_id]
        assert row["status"] == "ERROR", request_id
        assert row["storedFileUrl"] is None
        assert any(word in m.lower() for m in row["messages"]), (request_id, row["messages"])
    keys = archived_keys()
    assert len(keys) == 1  # only the good content, once
    assert s3_client().list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    meta = materializations(result)
    assert meta["verified_files"]["failed"] == len(expected_words)
    assert "corrupted" in meta["verified_files"]["failures"]
    assert {r["status"] for r in responses_of(archive).values()} == {"SUCCESS", "ERROR"}


def test_already_stored_content_is_not_uploaded_again(archive, instance):
    data = os.urandom(2048)
    archive.submit(archive.request("lab", archive.file("one.bin", data), data, requestId="first"))
    assert archive.run("lab", instance).success
    puts = []
    s3 = s3_client()
    archive.submit(
        archive.request("lab", archive.file("two.bin", data), data, requestId="again-md5", destinationDirectory="elsewhere"),
        archive.request("lab", archive.file("three.bin", data), data, "SHA-256", requestId="again-sha256"),
        archive.request("lab", archive.file("four.bin", data), data, "SHA-256", requestId="again-sha256-same-batch"),
    )
    result = archive.run("lab", instance)
    assert result.success
    report = archive.report("lab")
    first_url = report["first"]["storedFileUrl"]
    assert report["again-md5"]["storedFileUrl"] == first_url and report["again-md5"]["deduplicated"]
    assert report["again-sha256"]["storedFileUrl"] == first_url and report["again-sha256"]["deduplicated"]
    assert report["again-sha256-same-batch"]["storedFileUrl"] == first_url
    assert len(archived_keys(s3)) == 1
    assert materializations(result)["glacier_objects"]["stored"] == 0
    del puts


def test_other_tenants_content_is_never_shared(archive, instance):
    data = b"same bytes for two tenants"
    archive.submit(
        archive.request("lab", archive.file("x", data), data, requestId="lab-x"),
        archive.request("museum", archive.file("y", data), data, requestId="museum-x"),
    )
    assert archive.run("lab", instance).success
    assert archive.run("museum", instance).success
    lab, museum = archive.report("lab")["lab-x"], archive.report("museum")["museum-x"]
    assert lab["storedFileUrl"].startswith(f"s3://{BUCKET}/archive/lab/")
    assert museum["storedFileUrl"].startswith(f"s3://{BUCKET}/archive/museum/")
    assert not museum["deduplicated"]
    assert set(archive.report("lab")) == {"lab-x"}


def test_checksum_integrity_fails_when_s3_holds_other_bytes(archive, instance):
    """moto validates no checksum, so the fault is injected: the stored object is replaced right after upload."""
    from glacier_pipelines.resources import ArchiveStoreResource

    class TamperingStore(ArchiveStoreResource):
        def client(self):
            client = super().client()
            real_put = client.put_object

            def put_then_rot(**params):
                response = real_put(**params)
                s3_client().put_object(
                    Bucket=params["Bucket"],
                    Key=params["Key"],
                    Body=b"rotten bytes",
                    StorageClass="DEEP_ARCHIVE",
                    ChecksumAlgorithm="SHA256",
                )
                return response

            client.put_object = put_then_rot
            return client

    tampered = b"will be replaced"
    archive.submit(archive.request("lab", archive.file("t.bin", tampered), tampered, requestId="tampered"))
    store = archive.defs().resources["archive_store"]
    result = archive.run("lab", instance, archive_store=TamperingStore(**store.model_dump()))

    assert not result.success  # the check is blocking
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "checksum_integrity")
    assert not check.passed
    assert check.metadata["mismatches"].value == 1
    stored = materializations(result)["glacier_objects"]["objects"]
    url = next(part.strip() for part in stored.splitlines()[2].split("|") if part.strip().startswith("s3://"))
    assert url in check.metadata["mismatched_objects"].value
    assert "checksum" in check.metadata["mismatched_objects"].value
    # The check gates the answer: the requester is told ERROR with the check's reason, never SUCCESS.
    row = archive.report("lab")["tampered"]
    assert row["status"] == "ERROR" and row["storedFileUrl"] is None
    assert any("checksum_integrity failed" in m and "checksum" in m for m in row["messages"])
    answers = responses_of(archive)
    assert answers["tampered"]["status"] == "ERROR"
    assert [r.status for r in archive.catalog().unpublished_responses()] == []
    import sqlalchemy as sa
    from glacier_pipelines.catalog import tables as t

    with archive.catalog().engine.connect() as conn:
        said = conn.execute(sa.select(t.responses.c.status).where(t.responses.c.request_id == "tampered")).scalars().all()
    assert said == ["ERROR"]
    # The object is flagged: never offered again for deduplication.
    assert archive.catalog().flagged_locations("lab")[0]["key"] in url


def test_unfinished_batch_of_a_dead_run_is_adopted_and_stored_once(archive, instance):
    """A run that stopped after verified_files leaves an open multipart upload; the next run completes it."""
    big = os.urandom(6 * MiB)
    small = b"small file"
    archive.submit(
        archive.request("lab", archive.file("big", big), big, requestId="big"),
        archive.request("lab", archive.file("small", small), small, requestId="small"),
    )
    defs = archive.defs()
    instance.add_dynamic_partitions("tenants", ["lab"])
    partial = defs.resolve_job_def("archive_job").execute_in_process(
        partition_key="lab", instance=instance, op_selection=["ingest_batch", "verified_files"]
    )
    assert partial.success
    assert {r["status"] for r in archive.report("lab").values()} == {"VERIFIED"}
    assert len(s3_client().list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])) == 1

    result = archive.run("lab", instance)

    assert result.success
    assert {r["status"] for r in archive.report("lab").values()} == {"SUCCESS"}
    assert materializations(result)["glacier_objects"]["stored"] == 2
    assert len(archived_keys()) == 2
    assert s3_client().list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_orphaned_multipart_uploads_are_aborted(archive, instance, monkeypatch):
    s3 = s3_client()
    orphan = s3.create_multipart_upload(Bucket=BUCKET, Key="archive/lab/dir/orphan", StorageClass="DEEP_ARCHIVE")["UploadId"]
    other_tenant = s3.create_multipart_upload(Bucket=BUCKET, Key="archive/museum/dir/x")["UploadId"]
    from glacier_pipelines.resources import ArchiveStoreResource

    store = archive.defs().resources["archive_store"]
    data = b"x"
    archive.submit(archive.request("lab", archive.file("x", data), data))
    result = archive.run("lab", instance, archive_store=ArchiveStoreResource(**{**store.model_dump(), "stale_upload_hours": 0}))
    assert result.success
    assert materializations(result)["glacier_objects"]["aborted_stale_uploads"] == 1
    remaining = {u["UploadId"] for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])}
    assert orphan not in remaining and other_tenant in remaining  # only the run's own tenant prefix is touched


@pytest.mark.parametrize("storage_class", ["GLACIER", "GLACIER_IR", "STANDARD"])
def test_storage_class_and_encryption_are_applied(archive, instance, monkeypatch, storage_class):
    monkeypatch.setenv("GLACIER_STORAGE_CLASS", storage_class)
    monkeypatch.setenv("GLACIER_SSE", "AES256")
    data = os.urandom(100)
    archive.submit(archive.request("lab", archive.file("x", data), data, requestId="x"))
    assert archive.run("lab", instance).success
    key = archive.report("lab")["x"]["storedFileUrl"].split("/", 3)[3]
    head = s3_client().head_object(Bucket=BUCKET, Key=key)
    assert head.get("StorageClass", "STANDARD") == storage_class
    assert head["ServerSideEncryption"] == "AES256"
    assert archive.report("lab")["x"]["storageClass"] == storage_class


def test_invalid_storage_class_is_refused_at_load(archive, monkeypatch):
    from glacier_pipelines.resources import resources_from_env

    monkeypatch.setenv("GLACIER_STORAGE_CLASS", "REDUCED_REDUNDANCY")
    with pytest.raises(ValueError, match="storage class"):
        resources_from_env()


def test_ingest_batch_is_bounded_and_the_rest_waits(archive, instance, monkeypatch):
    monkeypatch.setenv("GLACIER_BATCH_SIZE", "2")
    reqs = [archive.request("lab", archive.file(f"f{i}", bytes([i])), bytes([i]), requestId=f"r{i}") for i in range(5)]
    archive.submit(*reqs)
    result = archive.run("lab", instance)
    assert materializations(result)["ingest_batch"]["requests"] == 2
    statuses = [archive.report("lab")[f"r{i}"]["status"] for i in range(5)]
    assert statuses == ["SUCCESS", "SUCCESS", "PENDING", "PENDING", "PENDING"]
    archive.run("lab", instance)
    archive.run("lab", instance)
    assert {r["status"] for r in archive.report("lab").values()} == {"SUCCESS"}


def test_partition_runs_are_recorded_as_materializations(archive, instance):
    data = b"lineage"
    archive.submit(archive.request("lab", archive.file("x", data), data))
    result = archive.run("lab", instance)
    assert result.success
    for key in ("ingest_batch", "verified_files", "glacier_objects"):
        event = instance.get_latest_materialization_event(dg.AssetKey(key))
        assert event is not None and event.dagster_event.partition == "lab"


def test_a_request_resent_after_an_error_is_attempted_again_and_answered(archive, instance):
    """Issue #21: the requester who sends the same requestId again after an ERROR gets a new attempt and a new answer."""
    import sqlalchemy as sa

    from glacier_pipelines.catalog import tables as t

    data = b"the right bytes"
    archive.submit(archive.request("lab", archive.file("r", data), b"announced wrongly", requestId="again"))
    assert archive.run("lab", instance).success
    assert archive.report("lab")["again"]["status"] == "ERROR"
    first = responses_of(archive)
    assert first["again"]["status"] == "ERROR"

    archive.submit(archive.request("lab", archive.file("r", data), data, requestId="again"))  # corrected, same id
    row = archive.report("lab")["again"]
    assert row["status"] == "PENDING" and "sent again after its answer ERROR" in row["messages"][0]
    assert archive.run("lab", instance).success
    assert archive.report("lab")["again"]["status"] == "SUCCESS"
    assert responses_of(archive)["again"]["status"] == "SUCCESS"
    with archive.catalog().engine.connect() as conn:
        kept = (
            conn.execute(sa.select(t.responses.c.status).where(t.responses.c.request_id == "again").order_by(t.responses.c.id))
            .scalars()
            .all()
        )
    assert kept == ["ERROR-1", "SUCCESS"]  # the history stays; one current answer

    archive.submit(archive.request("lab", archive.file("r", data), data, requestId="again"))  # resent after SUCCESS: a duplicate
    assert archive.report("lab")["again"]["status"] == "SUCCESS"
    assert archive.catalog().unpublished_responses() == []
