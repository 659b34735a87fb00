"""The content index with fallback: a missing or corrupt location is flagged and another one is used."""

from __future__ import annotations

import hashlib

from glacier_pipelines.core.restores import parse_restore_request
from glacier_pipelines.flows import archive as flow
from glacier_pipelines.flows import restore as restore_flow
from glacier_pipelines.resources.archive import archive_setup
from glacier_pipelines_tests.conftest import BUCKET, s3_client

DATA = b"the same bytes, asked for by several requests" * 50


def _archive_steps(archive, run_id):
    r = archive.defs().resources
    setup = archive_setup(r["catalog"], r["archive_store"], r["sources"], r["request_transport"])
    batch, _ = flow.claim_batch(setup.catalog, "lab", run_id, 100, lambda run: True)
    verified = flow.verify_batch(setup, batch, "lab", run_id)
    stored = flow.store_batch(setup, batch, "lab", run_id)
    flow.check_batch(setup, batch)  # the blocking check answers the stored requests
    return setup, verified, stored


def _restore(archive, request_id):
    """Submit a restore of one file, run start and deliver until it settles; returns the report row and the summary."""
    r = archive.defs().resources
    setup = r["restore"].setup(r["catalog"], r["archive_store"])
    summary = restore_flow.submit(
        setup,
        parse_restore_request(
            {"tenant": "lab", "days": 1, "tier": "Bulk", "requester": "r@example.org", "files": [{"requestId": request_id}]}
        ),
    )
    for n in range(3):  # moto restores at once; a fallback needs a second start and deliver
        restore_flow.start(setup, "lab", f"restore-{n}")
        restore_flow.deliver(setup, "lab", f"restore-{n}")
    [row] = [x for x in restore_flow.report_rows(setup, "lab") if x["requestId"] == request_id]
    return row, summary


def test_a_missing_location_is_flagged_and_the_next_request_stores_the_content_anew(archive):
    url = archive.file("same.bin", DATA)
    md5 = hashlib.md5(DATA).hexdigest()
    archive.submit(archive.request("lab", url, DATA, requestId="first", destinationDirectory="a"))
    _archive_steps(archive, "run-1")
    first_key = f"archive/lab/a/{md5}"
    s3_client().delete_object(Bucket=BUCKET, Key=first_key)  # lost behind the catalog's back

    archive.submit(archive.request("lab", url, DATA, requestId="second", destinationDirectory="b"))
    setup, verified, stored = _archive_steps(archive, "run-2")
    report = archive.report("lab")
    assert verified.deduplicated == 0 and stored.stored == 1  # not answered from the missing copy
    assert report["second"]["status"] == "SUCCESS" and report["second"]["storedFileUrl"] == f"s3://{BUCKET}/archive/lab/b/{md5}"
    [flagged] = setup.catalog.flagged_locations("lab")
    assert flagged["key"] == first_key and "missing" in flagged["reason"]

    archive.submit(archive.request("lab", url, DATA, requestId="third", destinationDirectory="c"))
    _, verified, _ = _archive_steps(archive, "run-3")
    report = archive.report("lab")
    assert verified.deduplicated == 1 and report["third"]["storedFileUrl"] == f"s3://{BUCKET}/archive/lab/b/{md5}"
    keys = sorted(o["Key"] for o in s3_client().list_objects_v2(Bucket=BUCKET)["Contents"])
    assert keys == [f"archive/lab/b/{md5}"]  # one sound copy, none stored twice

    # The first request's own copy is gone: its restore is served from the sound copy of the same content.
    row, summary = _restore(archive, "first")
    assert "restored instead" in " ".join(summary["files"][0]["messages"])
    assert row["status"] == "READY" and f"archive/lab/b/{md5}" in row["downloadUrl"]


def test_a_copy_found_corrupt_on_restore_is_flagged_and_another_copy_restored(archive):
    url = archive.file("twice.bin", DATA)
    md5 = hashlib.md5(DATA).hexdigest()
    sha256 = hashlib.sha256(DATA).hexdigest()
    archive.submit(archive.request("lab", url, DATA, requestId="original", destinationDirectory="a"))
    setup, _, stored = _archive_steps(archive, "run-1")
    assert stored.stored == 1
    first = setup.catalog.objects("lab")[0]
    # A second copy of the same content, as an operator's replica or a rebuilt catalog would record it.
    replica_key = f"archive/lab/replica/{md5}"
    s3_client().put_object(Bucket=BUCKET, Key=replica_key, Body=DATA, StorageClass="DEEP_ARCHIVE", ChecksumAlgorithm="SHA256")
    head = s3_client().head_object(Bucket=BUCKET, Key=replica_key, ChecksumMode="ENABLED")
    setup.catalog.store(
        {
            "tenant": "lab",
            "bucket": BUCKET,
            "key": replica_key,
            "storage_class": "DEEP_ARCHIVE",
            "size": len(DATA),
            "sha256": sha256,
            "s3_checksum": head["ChecksumSHA256"],
            "etag": head["ETag"],
            "width": None,
            "height": None,
        },
        {"SHA-256": sha256},
        [],
        "replica",
    )
    # The first copy rots: the same size, other bytes. Only reading it shows it.
    s3_client().put_object(Bucket=BUCKET, Key=first.key, Body=DATA[:-1] + b"!", StorageClass="DEEP_ARCHIVE")

    row, _ = _restore(archive, "original")
    assert row["status"] == "READY" and replica_key in row["downloadUrl"]
    assert any("restored bytes differ" in m for m in row["messages"])
    flagged = {f["key"]: f["reason"] for f in setup.catalog.flagged_locations("lab")}
    assert list(flagged) == [first.key] and "differ" in flagged[first.key]
    # Nothing is deduplicated onto the flagged copy any more.
    archive.submit(archive.request("lab", url, DATA, requestId="later", destinationDirectory="z"))
    _archive_steps(archive, "run-2")
    assert archive.report("lab")["later"]["storedFileUrl"] == f"s3://{BUCKET}/{replica_key}"


def test_with_no_other_copy_the_restore_fails_and_says_why(archive):
    url = archive.file("once.bin", DATA)
    archive.submit(archive.request("lab", url, DATA, requestId="only"))
    setup, _, _ = _archive_steps(archive, "run-1")
    [obj] = setup.catalog.objects("lab")
    s3_client().put_object(Bucket=BUCKET, Key=obj.key, Body=b"rotten" * 10, StorageClass="DEEP_ARCHIVE")
    row, _ = _restore(archive, "only")
    assert row["status"] == "FAILED" and row["downloadUrl"] is None
    assert any("differ" in m for m in row["messages"])
    assert [f["key"] for f in setup.catalog.flagged_locations("lab")] == [obj.key]
