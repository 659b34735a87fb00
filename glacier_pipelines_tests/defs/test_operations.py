"""The operations schedules and their assets on in-process moto: reconciliation, restore expiry, cost report."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest

from glacier_pipelines_tests.conftest import BUCKET, materializations, s3_client


def _run(archive, instance, job_name, tenant="lab", as_of=None):
    from glacier_pipelines.defs.operations.assets import AS_OF_TAG

    if not instance.has_dynamic_partition("tenants", tenant):
        instance.add_dynamic_partitions("tenants", [tenant])
    tags = {AS_OF_TAG: as_of.isoformat()} if as_of else None
    return (
        archive.defs()
        .resolve_job_def(job_name)
        .execute_in_process(partition_key=tenant, instance=instance, tags=tags, raise_on_error=False)
    )


def _check(result):
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "catalog_objects_present"
    return check


@pytest.fixture
def stored(archive, instance, monkeypatch):
    """lab: two standalone objects and a closed package (with its manifest); museum: one object. Returns lab's report."""
    monkeypatch.setenv("GLACIER_PACKAGE_THRESHOLD_BYTES", "100")
    files = {"a": b"alpha" * 100, "b": b"bravo" * 100, "small": b"tiny file"}
    archive.submit(
        *[
            archive.request("lab", archive.file(n, d), d, requestId=f"lab-{n}", activateSmallFilePackaging=(n == "small"))
            for n, d in files.items()
        ]
    )
    archive.submit(archive.request("museum", archive.file("m", b"museum piece"), b"museum piece", requestId="museum-m"))
    assert archive.run("lab", instance).success and archive.run("museum", instance).success
    close = (
        archive.defs()
        .resolve_job_def("package_job")
        .execute_in_process(
            partition_key="lab", instance=instance, run_config={"ops": {"glacier_packages": {"config": {"close_all": True}}}}
        )
    )
    assert close.success
    report = archive.report("lab")
    assert {r["status"] for r in report.values()} == {"SUCCESS"} and "?member=" in report["lab-small"]["storedFileUrl"]
    return report


def test_reconciliation_names_missing_objects_reports_unnamed_ones_and_aborts_old_uploads(archive, instance, stored):
    s3 = s3_client()
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="archive/lab/dir/abandoned")["UploadId"]
    other = s3.create_multipart_upload(Bucket=BUCKET, Key="archive/museum/dir/abandoned")["UploadId"]

    # moto reports one fixed Initiated time for every upload, so the clock is set relative to what it reports.
    initiated = {u["UploadId"]: u["Initiated"] for u in s3.list_multipart_uploads(Bucket=BUCKET)["Uploads"]}[upload]
    clean = _run(archive, instance, "reconciliation_job", as_of=initiated + timedelta(hours=23))
    meta = materializations(clean)["bucket_reconciliation"]
    assert clean.success and _check(clean).passed
    assert meta["catalog_keys"] == meta["bucket_keys"] == 4  # a, b, the package and its manifest
    assert (meta["missing"], meta["unnamed"], meta["aborted_stale_uploads"]) == (0, 0, 0)  # the upload is young

    s3.put_object(Bucket=BUCKET, Key="archive/lab/dir/stray", Body=b"nobody named me")
    extra = _run(archive, instance, "reconciliation_job", as_of=initiated + timedelta(hours=23))
    assert _check(extra).passed  # an object no row names is reported, not an alert
    assert materializations(extra)["bucket_reconciliation"]["unnamed"] == 1

    gone = stored["lab-a"]["storedFileUrl"].removeprefix(f"s3://{BUCKET}/")
    s3.delete_object(Bucket=BUCKET, Key=gone)
    later = _run(archive, instance, "reconciliation_job", as_of=initiated + timedelta(hours=25))
    assert later.success  # the run succeeds; the check carries the alert
    check = _check(later)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["missing"].value == 1 and gone in check.metadata["missing_objects"].value
    meta = materializations(later)["bucket_reconciliation"]
    assert meta["missing"] == 1 and meta["unnamed"] == 1 and meta["unnamed_bytes"] == len(b"nobody named me")
    assert "archive/lab/dir/stray" in meta["unnamed_objects"] and gone not in meta["unnamed_objects"]
    assert meta["aborted_stale_uploads"] == 1 and upload in meta["aborted_uploads"]
    left = {u["UploadId"] for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])}
    assert upload not in left and other in left  # another tenant's prefix is not touched by lab's run

    museum = _run(archive, instance, "reconciliation_job", tenant="museum")
    assert _check(museum).passed and materializations(museum)["bucket_reconciliation"]["unnamed"] == 0


def test_schedules_request_one_run_per_tenant_with_keys_unique_per_tick(archive, instance):
    from glacier_pipelines.defs.operations.schedules import cost_report_schedule, reconciliation_schedule

    resources = archive.defs().resources
    with dg.build_schedule_context(
        instance=instance, resources=resources, scheduled_execution_time=datetime(2026, 1, 2, 2, 23, tzinfo=timezone.utc)
    ) as context:
        assert isinstance(reconciliation_schedule(context), dg.SkipReason)  # no tenant yet
    instance.add_dynamic_partitions("tenants", ["museum", "lab"])
    keys = []
    for day in (2, 3):
        when = datetime(2026, 1, day, 2, 23, tzinfo=timezone.utc)
        for schedule in (reconciliation_schedule, cost_report_schedule):
            with dg.build_schedule_context(instance=instance, resources=resources, scheduled_execution_time=when) as context:
                requests = schedule(context)
            assert [r.partition_key for r in requests] == ["lab", "museum"]
            assert all(r.tags["glacier/as_of"] == when.isoformat() for r in requests)
            keys += [r.run_key for r in requests]
    assert len(set(keys)) == len(keys) == 8


def test_restore_expiry_marks_lapsed_restores_and_retires_their_links(archive, instance):
    from glacier_pipelines.catalog.restores import RestoreStore
    from glacier_pipelines.defs.operations.schedules import restore_expiry_schedule
    from glacier_pipelines.flows import restore as restore_flow

    data = b"keep me" * 50
    archive.submit(archive.request("lab", archive.file("k", data), data, requestId="lab-k"))
    assert archive.run("lab", instance).success
    restore = (
        archive.defs()
        .resolve_job_def("restore_job")
        .execute_in_process(
            partition_key="lab",
            instance=instance,
            run_config={"ops": {"restore_requests": {"config": {"request_ids": ["lab-k"], "days": 1, "requester": "ana@example.org"}}}},
        )
    )
    assert restore.success
    r = archive.defs().resources
    setup = r["restore"].setup(r["catalog"], r["archive_store"])
    [row] = restore_flow.report_rows(setup, "lab")
    assert row["status"] == "READY" and row["downloadUrl"]
    expires = datetime.fromisoformat(row["expiresAt"])

    def tick(when):
        with dg.build_schedule_context(instance=instance, resources=archive.defs().resources, scheduled_execution_time=when) as context:
            return restore_expiry_schedule(context)

    assert isinstance(tick(datetime.now(timezone.utc)), dg.SkipReason)  # nothing has lapsed yet
    later = expires + timedelta(hours=1)
    [request] = tick(later)
    assert request.partition_key == "lab"

    result = _run(archive, instance, "restore_expiry_job", as_of=later)
    assert result.success
    assert materializations(result)["restore_expiry"]["links_expired"] == 1
    [row] = restore_flow.report_rows(setup, "lab")
    assert row["status"] == "EXPIRED" and row["downloadUrl"] is None
    assert "expired" in row["messages"][-1]
    assert RestoreStore(setup.catalog).rows(tenant="lab")[0]["download_url"] is None  # the link itself is gone from the catalog
    obj_id = RestoreStore(setup.catalog).rows(tenant="lab")[0]["object_id"]
    assert RestoreStore(setup.catalog).object_state(obj_id)["state"] == "EXPIRED"  # the restored copy is gone too
    assert materializations(result)["restore_expiry"]["copies_expired"] == 1
    assert isinstance(tick(later), dg.SkipReason)  # done: the next tick has nothing left


def test_cost_report_materializes_a_table_and_a_png_per_tenant(archive, instance):
    data = hashlib.sha256(b"x").digest() * 64
    archive.submit(archive.request("lab", archive.file("c", data), data, requestId="lab-c"))
    assert archive.run("lab", instance).success
    result = _run(archive, instance, "cost_report_job")
    assert result.success
    meta = materializations(result)["cost_report"]
    assert meta["objects"] == 1 and meta["bytes"] == len(data) and meta["archive_usd_per_month"] > 0
    assert "| lab | archive (per month) | DEEP_ARCHIVE |" in meta["costs"]
    png = base64.b64decode(meta["cost_plot"].split("base64,", 1)[1].rstrip(")"))
    assert png.startswith(b"\x89PNG") and Path(meta["cost_plot_path"]).read_bytes() == png
    assert Path(meta["cost_table_path"]).read_text().splitlines()[0] == "tenant,kind,storage_class,tier,objects,bytes,usd"
