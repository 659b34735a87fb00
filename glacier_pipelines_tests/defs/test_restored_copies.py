"""Restored copies of package members expire with their links (issue #17): the restore_expiry_schedule run deletes them,
the cost report counts them while they live, and lifecycle_rules keeps the backstop expiration rule in place."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest
from botocore.exceptions import ClientError

from glacier_pipelines_tests.conftest import BUCKET, materializations, s3_client


def _run(archive, instance, job_name, tenant="lab", as_of=None, run_config=None):
    from glacier_pipelines.defs.operations.assets import AS_OF_TAG

    if not instance.has_dynamic_partition("tenants", tenant):
        instance.add_dynamic_partitions("tenants", [tenant])
    tags = {AS_OF_TAG: as_of.isoformat()} if as_of else None
    return (
        archive.defs()
        .resolve_job_def(job_name)
        .execute_in_process(partition_key=tenant, instance=instance, tags=tags, run_config=run_config, raise_on_error=False)
    )


@pytest.fixture
def served(archive, instance, monkeypatch):
    """A packaged file of lab restored and served through a STANDARD copy; returns (setup, report row, copy key, data)."""
    from glacier_pipelines.flows import restore as restore_flow

    monkeypatch.setenv("GLACIER_PACKAGE_THRESHOLD_BYTES", "1000")
    data = b"a small file, packaged" * 10
    archive.submit(archive.request("lab", archive.file("small", data), data, requestId="lab-small", activateSmallFilePackaging=True))
    assert archive.run("lab", instance).success
    assert _run(archive, instance, "package_job", run_config={"ops": {"glacier_packages": {"config": {"close_all": True}}}}).success
    restore = _run(
        archive,
        instance,
        "restore_job",
        run_config={"ops": {"restore_requests": {"config": {"request_ids": ["lab-small"], "days": 1, "requester": "ana@example.org"}}}},
    )
    assert restore.success
    r = archive.defs().resources
    setup = r["restore"].setup(r["catalog"], r["archive_store"])
    [row] = restore_flow.report_rows(setup, "lab")
    assert row["status"] == "READY" and "?member=" in row["storedFileUrl"]
    key = row["downloadUrl"].split("?", 1)[0].split(f"{BUCKET}.s3.amazonaws.com/", 1)[1]
    assert key.startswith("archive/lab/restored/")
    assert s3_client().get_object(Bucket=BUCKET, Key=key)["Body"].read() == data
    return setup, row, key, data


def test_the_schedule_deletes_a_lapsed_copy_and_the_cost_report_stops_counting_it(archive, instance, served):
    from glacier_pipelines.catalog.restores import RestoreStore
    from glacier_pipelines.defs.operations.schedules import restore_expiry_schedule

    setup, row, key, data = served
    tags = s3_client().get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]
    assert {"Key": "glacier-pipelines", "Value": "restored-copy"} in tags  # what the lifecycle backstop selects

    before = materializations(_run(archive, instance, "cost_report_job"))["cost_report"]
    assert before["restored_copy_bytes"] == len(data)
    assert "| lab | restored copies (per month) | STANDARD |" in before["costs"]

    def tick(when):
        with dg.build_schedule_context(instance=instance, resources=archive.defs().resources, scheduled_execution_time=when) as context:
            return restore_expiry_schedule(context)

    assert isinstance(tick(datetime.now(timezone.utc)), dg.SkipReason)  # the link still lives: nothing to do
    later = datetime.fromisoformat(row["expiresAt"]) + timedelta(minutes=5)
    [request] = tick(later)
    assert request.partition_key == "lab"
    result = _run(archive, instance, "restore_expiry_job", as_of=later)
    assert result.success
    meta = materializations(result)["restore_expiry"]
    assert (meta["links_expired"], meta["member_copies_deleted"], meta["member_copies_not_deleted"]) == (1, 1, 0)

    with pytest.raises(ClientError, match="404|NoSuchKey|Not Found"):
        s3_client().head_object(Bucket=BUCKET, Key=key)
    [stored] = RestoreStore(setup.catalog).rows(tenant="lab")
    assert stored["status"] == "EXPIRED" and stored["download_url"] is None
    assert stored["messages"][-1] == f"the download link expired and the restored copy s3://{BUCKET}/{key} was deleted"
    assert isinstance(tick(later), dg.SkipReason)  # nothing left for the next tick

    after = materializations(_run(archive, instance, "cost_report_job"))["cost_report"]
    assert after["restored_copy_bytes"] == 0 and "restored copies" not in after["costs"]


def test_a_copy_that_cannot_be_deleted_keeps_its_row_for_the_next_run(archive, instance, served, monkeypatch):
    from glacier_pipelines.flows import restore as restore_flow

    setup, row, key, _ = served
    later = datetime.fromisoformat(row["expiresAt"]) + timedelta(minutes=5)
    real = setup.s3

    class Refusing:
        def __getattr__(self, name):
            return getattr(real, name)

        def delete_object(self, **_):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DeleteObject")

    setup.s3 = Refusing()
    counts = restore_flow.expire(setup, "lab", later)
    assert (counts["links_expired"], counts["member_copies_not_deleted"], counts["still_ready"]) == (0, 1, 1)
    assert s3_client().head_object(Bucket=BUCKET, Key=key)["ContentLength"] > 0
    setup.s3 = real
    counts = restore_flow.expire(setup, "lab", later)
    assert (counts["links_expired"], counts["member_copies_deleted"], counts["still_ready"]) == (1, 1, 0)


def test_lifecycle_rules_write_and_keep_the_restored_copies_backstop(archive, instance, tmp_path, monkeypatch):
    from glacier_pipelines.core.lifecycle import RESTORED_COPIES_RULE_ID, RESTORED_COPY_EXPIRY_DAYS

    declared = tmp_path / "lifecycle.toml"
    declared.write_text('[[tenants.lab.rules]]\nname = "trash"\nprefix = "trash/"\nexpiration_days = 3650\n')
    monkeypatch.setenv("GLACIER_LIFECYCLE_CONFIG", str(declared))
    foreign = {"ID": "logs-expiry", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 30}}
    s3_client().put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [foreign]})
    job = archive.defs().resolve_job_def("lifecycle_job")

    def rules():
        return {r["ID"]: r for r in s3_client().get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]}

    first = materializations(job.execute_in_process(instance=instance))["lifecycle_rules"]
    assert (first["added"], first["foreign_kept"]) == (2, 1)
    backstop = rules()[RESTORED_COPIES_RULE_ID]
    assert RESTORED_COPY_EXPIRY_DAYS == 8  # a link lives 7 days at most (SigV4), the copy one day more at worst
    assert backstop["Expiration"] == {"Days": 8} and backstop["Status"] == "Enabled"
    assert backstop["Filter"] == {"And": {"Prefix": "archive/", "Tags": [{"Key": "glacier-pipelines", "Value": "restored-copy"}]}}
    assert set(rules()) == {"logs-expiry", "glacier-pipelines:lab:trash", RESTORED_COPIES_RULE_ID}

    again = materializations(job.execute_in_process(instance=instance))["lifecycle_rules"]
    assert (again["added"], again["changed"], again["unchanged"], again["written"]) == (0, 0, 2, False)

    # Someone else's tool rewrote the configuration without it: the next run puts it back, and keeps theirs.
    kept = [foreign, rules()["glacier-pipelines:lab:trash"]]
    s3_client().put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": kept})
    healed = materializations(job.execute_in_process(instance=instance))["lifecycle_rules"]
    assert (healed["added"], healed["written"]) == (1, True)
    assert rules()[RESTORED_COPIES_RULE_ID] == backstop and rules()["logs-expiry"] == foreign

    declared.write_text("")  # no tenant rule left: the backstop still stays
    materializations(job.execute_in_process(instance=instance))
    assert set(rules()) == {"logs-expiry", RESTORED_COPIES_RULE_ID}
