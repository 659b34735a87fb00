"""Small-file packaging on in-process moto: thresholds, closing by size and age, crashes, addresses, rebuild, dedupe."""

from __future__ import annotations

from glacier_pipelines.catalog.packages import PackageStore

import hashlib
import io
import json
import tarfile
from datetime import datetime, timezone

import dagster as dg
import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.core import staging
from glacier_pipelines.core.packaging import parse_manifest, parse_member_url
from glacier_pipelines_tests.conftest import BUCKET, archived_keys, materializations, responses_of, s3_client


def _small(archive, name, size, **fields):
    data = hashlib.sha256(name.encode()).digest() * (size // 32) + b"x" * (size % 32)
    fields.setdefault("activateSmallFilePackaging", True)
    return archive.request("lab", archive.file(name, data), data, requestId=name, **fields), data


def _close_all(archive, instance, tenant="lab"):
    job = archive.defs().resolve_job_def("package_job")
    return job.execute_in_process(
        partition_key=tenant,
        instance=instance,
        raise_on_error=False,
        run_config={"ops": {"glacier_packages": {"config": {"close_all": True}}}},
    )


def _objects():
    return archived_keys()


def test_threshold_edges_and_the_opt_in_flag(packing, instance):
    at, _ = _small(packing, "at-threshold", 1000)
    over, _ = _small(packing, "one-over", 1001)
    off, _ = _small(packing, "flag-off", 10, activateSmallFilePackaging=False)
    packing.submit(at, over, off)
    result = packing.run("lab", instance)
    assert result.success
    report = packing.report("lab")
    assert report["at-threshold"]["status"] == "DELAYED"
    assert report["one-over"]["status"] == report["flag-off"]["status"] == "SUCCESS"
    assert "?member=" not in report["one-over"]["storedFileUrl"]
    assert materializations(result)["glacier_packages"]["members_added"] == 1
    delayed = [r for r in responses_of(packing).values() if r["requestId"] == "at-threshold"]
    assert [r["status"] for r in delayed] == ["DELAYED"]  # durably staged, answered, waiting for its package


def test_package_closes_by_size_and_members_are_addressable(packing, instance):
    reqs = [_small(packing, f"m{i}", 900 + i) for i in range(4)]  # 3,606 bytes >= the 3,000 target
    packing.submit(*[r for r, _ in reqs])
    result = packing.run("lab", instance)
    assert result.success
    meta = materializations(result)["glacier_packages"]
    assert meta["packages_stored"] == 1 and meta["members_stored"] == 4 and meta["open_packages"] == 0
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["package_integrity"].passed and checks["package_integrity"].metadata["members_checked"].value == 4
    report = packing.report("lab")
    keys = _objects()
    [tar_key] = [k for k in keys if k.endswith(".tar")]
    assert f"{tar_key}.manifest.jsonl" in keys and len(keys) == 2
    tar_bytes = s3_client().get_object(Bucket=BUCKET, Key=tar_key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:  # a standard tar anyone can open
        assert len(tar.getmembers()) == 4
    manifest = {
        row["request_id"]: row
        for row in parse_manifest(s3_client().get_object(Bucket=BUCKET, Key=f"{tar_key}.manifest.jsonl")["Body"].read())
    }
    for req, data in reqs:
        row = report[req["requestId"]]
        assert row["status"] == "SUCCESS" and row["fileSizeInBytes"] == len(data)
        bucket, key, member = parse_member_url(row["storedFileUrl"])
        assert (bucket, key) == (BUCKET, tar_key)
        entry = manifest[req["requestId"]]
        assert entry["name"] == member and entry["checksum"] == req["checksum"]
        ranged = s3_client().get_object(Bucket=BUCKET, Key=key, Range=f"bytes={entry['offset']}-{entry['offset'] + entry['length'] - 1}")
        assert ranged["Body"].read() == data
    transport = packing.transport()
    from glacier_pipelines.flows import intake

    intake.publish_responses(transport, packing.catalog(), worker_id="w")
    sent = [json.loads(m.body) for m in transport.read_responses(100)]
    for req, _ in reqs:  # each member: DELAYED while staged, then exactly one terminal SUCCESS
        assert [b["status"] for b in sent if b["requestId"] == req["requestId"]] == ["DELAYED", "SUCCESS"]
    final = {b["requestId"]: b for b in sent if b["status"] == "SUCCESS"}
    body = final["m0"]["content"]  # noqa: F841 (read below)
    assert body["fileProcessingMetadata"]["smallFileManaged"] is True
    assert body["storeFileMetadata"]["storedFileUrl"] == report["m0"]["storedFileUrl"]
    assert list((packing.home / "staging").rglob("*.*")) == []  # staged members and the tar are gone


def test_package_closes_by_age_through_the_schedule(packing, instance, monkeypatch):
    from glacier_pipelines.defs.archive.packages import package_close_schedule

    req, _ = _small(packing, "lonely", 100)
    packing.submit(req)
    assert packing.run("lab", instance).success
    resources = packing.defs().resources
    when = datetime.now(timezone.utc)
    with dg.build_schedule_context(instance=instance, resources=resources, scheduled_execution_time=when) as context:
        young = package_close_schedule(context)
    assert isinstance(young, dg.SkipReason)
    monkeypatch.setenv("GLACIER_PACKAGE_MAX_AGE_HOURS", "0")
    resources = packing.defs().resources
    with dg.build_schedule_context(instance=instance, resources=resources, scheduled_execution_time=when) as context:
        aged = package_close_schedule(context)
    assert [r.partition_key for r in aged] == ["lab"]
    store = PackageStore(packing.catalog())
    [package] = store.open_packages("lab")
    live = instance.create_run_for_job(packing.defs().resolve_job_def("package_job"))  # not finished
    assert store.claim_for_closing(package["id"], live.run_id, lambda run: False)
    with dg.build_schedule_context(instance=instance, resources=resources, scheduled_execution_time=when) as context:
        assert isinstance(package_close_schedule(context), dg.SkipReason)  # a live run is closing it: no run for that
    instance.report_run_failed(live)  # that run died: its claim is taken over
    with dg.build_schedule_context(instance=instance, resources=resources, scheduled_execution_time=when) as context:
        assert [r.partition_key for r in package_close_schedule(context)] == ["lab"]
    job = packing.defs().resolve_job_def("package_job")
    assert job.execute_in_process(partition_key="lab", instance=instance).success
    assert packing.report("lab")["lonely"]["status"] == "SUCCESS"


def test_crash_between_staging_and_upload_stores_every_member_once(packing, instance, monkeypatch):
    from glacier_pipelines.core import transfer

    reqs = [_small(packing, f"c{i}", 500) for i in range(3)]
    packing.submit(*[r for r, _ in reqs])
    assert packing.run("lab", instance).success
    real = transfer.commit_stage

    def reset(*args, **kwargs):
        raise OSError("connection reset by peer")

    monkeypatch.setattr(transfer, "commit_stage", reset)
    failed = _close_all(packing, instance)
    assert materializations(failed)["glacier_packages"]["packages_stored"] == 0
    assert {packing.report("lab")[f"c{i}"]["status"] for i in range(3)} == {"DELAYED"}
    assert _objects() == []
    monkeypatch.setattr(transfer, "commit_stage", real)
    assert _close_all(packing, instance).success
    assert {packing.report("lab")[f"c{i}"]["status"] for i in range(3)} == {"SUCCESS"}
    assert len(_objects()) == 2  # one tar and its manifest: nothing missing, nothing twice
    assert _close_all(packing, instance).success and len(_objects()) == 2


def test_a_staged_member_damaged_before_packing_fails_alone(packing, instance):
    reqs = [_small(packing, f"d{i}", 400) for i in range(3)]
    packing.submit(*[r for r, _ in reqs])
    assert packing.run("lab", instance).success
    member = t.package_members.c
    catalog = packing.catalog()
    with catalog.engine.connect() as conn:
        locator = conn.execute(sa.select(member.staged_path).where(member.request_pk == catalog.get_request("lab", "d1").pk)).scalar()
    segment, offset, _ = staging.in_segment(locator)  # appended, with d0 and d2, to one segment
    with open(segment, "r+b") as f:
        f.seek(offset)
        f.write(b"rot")
    assert _close_all(packing, instance).success
    report = packing.report("lab")
    assert report["d1"]["status"] == "ERROR" and "damaged" in report["d1"]["messages"][-1]
    assert report["d0"]["status"] == report["d2"]["status"] == "SUCCESS"


def test_same_content_is_packed_once_within_and_across_batches(packing, instance):
    data = b"same little file" * 10
    first = packing.request("lab", packing.file("a", data), data, requestId="a", activateSmallFilePackaging=True)
    twin = packing.request(
        "lab", packing.file("b", data), data, requestId="b", activateSmallFilePackaging=True, destinationDirectory="other"
    )
    packing.submit(first, twin)
    assert packing.run("lab", instance).success
    assert _close_all(packing, instance).success
    report = packing.report("lab")
    assert report["a"]["storedFileUrl"] == report["b"]["storedFileUrl"]
    [tar_key] = [k for k in _objects() if k.endswith(".tar")]
    with tarfile.open(fileobj=io.BytesIO(s3_client().get_object(Bucket=BUCKET, Key=tar_key)["Body"].read())) as tar:
        assert len(tar.getmembers()) == 1
    later = packing.request("lab", packing.file("c", data), data, "SHA-256", requestId="c", activateSmallFilePackaging=True)
    packing.submit(later)
    result = packing.run("lab", instance)
    assert result.success and materializations(result)["verified_files"]["deduplicated"] == 1
    row = packing.report("lab")["c"]
    assert row["status"] == "SUCCESS" and row["deduplicated"] and row["storedFileUrl"] == report["a"]["storedFileUrl"]
    assert len(_objects()) == 2


def test_catalog_rebuilt_from_the_bucket_after_the_database_is_lost(packing, instance):
    from glacier_pipelines.catalog import Catalog
    from glacier_pipelines.flows.rebuild import rebuild
    from glacier_pipelines.resources.archive import _catalogs

    reqs = [_small(packing, f"r{i}", 300) for i in range(3)]
    big, _ = _small(packing, "standalone", 5000)
    packing.submit(*[r for r, _ in reqs], big)
    assert packing.run("lab", instance).success
    assert _close_all(packing, instance).success
    before = packing.report("lab")
    url = packing.defs().resources["catalog"].get().url
    _catalogs.pop(url).dispose()
    (packing.home / "catalog.sqlite").unlink()
    for suffix in ("-wal", "-shm"):
        (packing.home / f"catalog.sqlite{suffix}").unlink(missing_ok=True)
    fresh = Catalog(url)
    counts = rebuild(fresh, s3_client(), BUCKET, "archive")
    assert counts == {"manifests": 1, "members": 3, "objects": 1, "ledger_requests": 1, "unresolved": 0, "restores": 0, "moves": 0}
    after = {r["requestId"]: r for r in fresh.report("lab")}
    for i in range(3):
        rid = f"r{i}"
        assert after[rid]["status"] == "SUCCESS"
        assert (after[rid]["storedFileUrl"], after[rid]["checksum"], after[rid]["fileSizeInBytes"]) == (
            before[rid]["storedFileUrl"],
            before[rid]["checksum"],
            before[rid]["fileSizeInBytes"],
        )
    standalone = fresh.find_object("lab", "MD5", big["checksum"])
    assert standalone is not None and standalone.url == before["standalone"]["storedFileUrl"]
    assert (after["standalone"]["status"], after["standalone"]["storedFileUrl"]) == ("SUCCESS", before["standalone"]["storedFileUrl"])
    assert rebuild(fresh, s3_client(), BUCKET, "archive")["members"] == 0  # idempotent


def test_three_members_restore_their_package_once_and_come_back_verified(archive, instance, monkeypatch):
    """DEEP_ARCHIVE packages: one RestoreObject for three members, each extracted by range and checked."""
    from glacier_pipelines.core.restores import parse_restore_request
    from glacier_pipelines.flows import restore as flow
    from glacier_pipelines_tests.defs.test_restore import SENT, CapturingStore

    monkeypatch.setenv("GLACIER_PACKAGE_THRESHOLD_BYTES", "1000")
    reqs = [_small(archive, f"p{i}", 600 + i) for i in range(4)]
    archive.submit(*[r for r, _ in reqs])
    assert archive.run("lab", instance).success and _close_all(archive, instance).success
    resources = archive.defs().resources
    setup = resources["restore"].setup(resources["catalog"], resources["archive_store"])
    member_url = archive.report("lab")["p2"]["storedFileUrl"]
    summary = flow.submit(
        setup,
        parse_restore_request(
            {
                "tenant": "lab",
                "days": 1,
                "tier": "Bulk",
                "requester": "r@example.org",
                "files": [{"requestId": "p0"}, {"checksum": reqs[1][0]["checksum"]}, {"url": member_url}],
            }
        ),
    )
    assert [f["status"] for f in summary["files"]] == ["PENDING"] * 3
    costs = [f["estimatedCostUsd"] for f in summary["files"]]
    assert costs[0] > 0 and costs[1:] == [0.0, 0.0]  # the package is retrieved (and paid) once
    SENT.clear()
    job = archive.defs(archive_store=CapturingStore(**resources["archive_store"].model_dump())).resolve_job_def("restore_job")
    result = job.execute_in_process(partition_key="lab", instance=instance, raise_on_error=False)
    assert result.success and len(SENT) == 1 and SENT[0]["Key"].endswith(".tar")
    rows = {r["requestId"]: r for r in flow.report_rows(setup, "lab")}
    for i in range(3):  # the links point at in-process moto, so the copies are read back with boto3
        row = rows[f"p{i}"]
        assert row["status"] == "READY" and "?member=" in row["storedFileUrl"]
        copy_key = row["downloadUrl"].split("?", 1)[0].split(f"{BUCKET}.s3.amazonaws.com/", 1)[1]
        assert s3_client().get_object(Bucket=BUCKET, Key=copy_key)["Body"].read() == reqs[i][1]


def test_a_corrupted_member_in_a_restored_package_is_caught(archive, instance, monkeypatch):
    from glacier_pipelines.core.restores import parse_restore_request
    from glacier_pipelines.flows import restore as flow

    monkeypatch.setenv("GLACIER_PACKAGE_THRESHOLD_BYTES", "1000")
    reqs = [_small(archive, f"q{i}", 700) for i in range(2)]
    archive.submit(*[r for r, _ in reqs])
    assert archive.run("lab", instance).success and _close_all(archive, instance).success
    [tar_key] = [k for k in _objects() if k.endswith(".tar")]
    s3_client().restore_object(Bucket=BUCKET, Key=tar_key, RestoreRequest={"Days": 1, "GlacierJobParameters": {"Tier": "Bulk"}})
    body = bytearray(s3_client().get_object(Bucket=BUCKET, Key=tar_key)["Body"].read())
    offset = next(
        m
        for m in parse_manifest(s3_client().get_object(Bucket=BUCKET, Key=f"{tar_key}.manifest.jsonl")["Body"].read())
        if m["request_id"] == "q1"
    )["offset"]
    body[offset] ^= 0xFF  # one flipped byte inside member q1
    s3_client().put_object(Bucket=BUCKET, Key=tar_key, Body=bytes(body), StorageClass="DEEP_ARCHIVE")  # rotted in the archive
    resources = archive.defs().resources
    setup = resources["restore"].setup(resources["catalog"], resources["archive_store"])
    flow.submit(
        setup,
        parse_restore_request(
            {"tenant": "lab", "days": 1, "tier": "Bulk", "requester": "r@example.org", "files": [{"requestId": "q0"}, {"requestId": "q1"}]}
        ),
    )
    result = archive.defs().resolve_job_def("restore_job").execute_in_process(partition_key="lab", instance=instance, raise_on_error=False)
    assert not result.success
    [check] = result.get_asset_check_evaluations()
    assert not check.passed
    rows = {r["requestId"]: r for r in flow.report_rows(setup, "lab")}
    assert rows["q0"]["status"] == "READY" and rows["q1"]["status"] == "FAILED" and rows["q1"]["downloadUrl"] is None


def test_a_batch_larger_than_the_target_fills_several_packages(packing, instance):
    """3,000-byte target: eight 900-byte members go 4 + 4 (each package passes its target by less than one member)."""
    reqs = [_small(packing, f"s{i}", 900) for i in range(8)]
    packing.submit(*[r for r, _ in reqs])
    result = packing.run("lab", instance)
    assert result.success
    meta = materializations(result)["glacier_packages"]
    assert meta["packages_stored"] == 2 and meta["members_stored"] == 8 and meta["open_packages"] == 0
    tars = [k for k in _objects() if k.endswith(".tar")]
    assert len(tars) == 2
    sizes = []
    for key in tars:
        manifest = parse_manifest(s3_client().get_object(Bucket=BUCKET, Key=f"{key}.manifest.jsonl")["Body"].read())
        sizes.append(sum(m["length"] for m in manifest))
    assert sorted(sizes) == [3600, 3600]
    assert {r["status"] for r in packing.report("lab").values()} == {"SUCCESS"}
