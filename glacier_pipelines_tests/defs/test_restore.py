"""The restore path on in-process moto: tiers sent, refusals, one restore per object, events, polling, delivery."""

from __future__ import annotations

import email
import email.policy
import json
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote_plus

import boto3
import dagster as dg
import pytest

from glacier_pipelines.resources import ArchiveStoreResource
from glacier_pipelines_tests.conftest import BUCKET, materializations, s3_client

SENT: list[dict] = []


class CapturingStore(ArchiveStoreResource):
    """Records the parameters of every RestoreObject call: moto ignores the tier, so the test reads what was sent."""

    def client(self):
        client = super().client()
        client.meta.events.register("provide-client-params.s3.RestoreObject", lambda params, **_: SENT.append(dict(params)))
        return client


@pytest.fixture(autouse=True)
def _clear_sent():
    SENT.clear()


@pytest.fixture
def archived(archive, instance):
    """Three files archived for tenant lab (DEEP_ARCHIVE) and one for museum; returns their report rows."""
    files = {"a": b"alpha" * 100, "b": b"bravo" * 100, "c": b"charlie" * 100}
    archive.submit(*[archive.request("lab", archive.file(name, data), data, requestId=f"lab-{name}") for name, data in files.items()])
    archive.submit(archive.request("museum", archive.file("m", b"museum piece"), b"museum piece", requestId="museum-m"))
    # The archive path's own steps, without a Dagster run each: the restore tests only need what they leave behind.
    from glacier_pipelines.flows import archive as archive_flow
    from glacier_pipelines.resources.archive import archive_setup

    r = archive.defs().resources
    setup = archive_setup(r["catalog"], r["archive_store"], r["sources"], r["request_transport"])
    for tenant in ("lab", "museum"):
        batch, _ = archive_flow.claim_batch(setup.catalog, tenant, f"setup-{tenant}", 100, lambda run: True)
        archive_flow.verify_batch(setup, batch, tenant, f"setup-{tenant}")
        archive_flow.store_batch(setup, batch, tenant, f"setup-{tenant}")
        archive_flow.check_batch(setup, batch)  # the blocking check answers the stored requests
    report = archive.report()
    assert {row["status"] for row in report.values()} == {"SUCCESS"}
    return report


def _run_restore(archive, instance, tenant="lab", config=None):
    defs = archive.defs()
    store = defs.resources["archive_store"]
    resources = {"archive_store": CapturingStore(**store.model_dump())}
    if not instance.has_dynamic_partition("tenants", tenant):
        instance.add_dynamic_partitions("tenants", [tenant])
    job = archive.defs(**resources).resolve_job_def("restore_job")
    run_config = {"ops": {"restore_requests": {"config": config}}} if config else None
    return job.execute_in_process(partition_key=tenant, instance=instance, raise_on_error=False, run_config=run_config)


def _submit(archive, **request):
    from glacier_pipelines.core.restores import parse_restore_request
    from glacier_pipelines.flows import restore as flow

    setup = archive.defs().resources["restore"].setup(archive.defs().resources["catalog"], archive.defs().resources["archive_store"])
    return flow.submit(setup, parse_restore_request(request)), setup


@pytest.mark.parametrize("tier", ["Bulk", "Standard"])
def test_restore_sends_the_tier_and_days_asked_and_delivers_a_verified_link(archive, instance, archived, tier):
    result = _run_restore(
        archive, instance, config={"request_ids": ["lab-a", "lab-b"], "days": 3, "tier": tier, "requester": "ana@example.org"}
    )
    assert result.success
    assert sorted(p["Key"] for p in SENT) == sorted(archived[r]["storedFileUrl"].split("/", 3)[3] for r in ("lab-a", "lab-b"))
    assert all(p["RestoreRequest"] == {"Days": 3, "GlacierJobParameters": {"Tier": tier}} for p in SENT)
    meta = materializations(result)
    assert meta["restore_requests"]["restores_started"] == 2 and meta["restore_requests"]["tiers_sent"] == {tier: 2}
    assert meta["restored_files"]["verified"] == 2 and meta["restored_files"]["ready"] == 2
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "restored_checksum_integrity" and check.passed
    rows = _report(archive)
    assert {r["status"] for r in rows} == {"READY"}
    url = rows[0]["downloadUrl"]
    assert url.startswith("http") and "Signature" in url or "X-Amz-Signature" in url
    import requests

    assert requests.get(url, timeout=10).status_code in (200, 403)  # moto in-process serves no HTTP; the URL is well formed
    assert rows[0]["estimatedCostUsd"] > 0
    assert datetime.fromisoformat(rows[0]["expiresAt"]) <= datetime.now(timezone.utc) + timedelta(days=3)
    for value in meta["restored_files"].values():  # signatures never reach metadata
        assert "Signature" not in str(value)


def _report(archive, tenant=None):
    from glacier_pipelines.flows import restore as flow

    r = archive.defs().resources
    return flow.report_rows(r["restore"].setup(r["catalog"], r["archive_store"]), tenant)


def test_expedited_is_refused_for_deep_archive_and_other_tenants_files_are_not_revealed(archive, instance, archived):
    museum_url = archived["museum-m"]["storedFileUrl"]
    summary, _ = _submit(archive, tenant="lab", files=[{"requestId": "lab-a"}], days=1, tier="Expedited", requester="x@example.org")
    assert summary["files"][0]["status"] == "REFUSED" and "Expedited" in summary["files"][0]["messages"][0]
    summary, _ = _submit(
        archive,
        tenant="lab",
        days=1,
        tier="Bulk",
        requester="x@example.org",
        files=[{"url": museum_url}, {"url": f"s3://{BUCKET}/archive/lab/dir/ffff"}, {"requestId": "museum-m"}],
    )
    messages = [f["messages"][0] for f in summary["files"]]
    assert [f["status"] for f in summary["files"]] == ["REFUSED"] * 3
    assert messages[0].replace(museum_url, "X") == messages[1].replace(f"s3://{BUCKET}/archive/lab/dir/ffff", "X")  # same words
    assert "museum" not in messages[2].replace("requestId museum-m", "")
    assert _run_restore(archive, instance).success
    assert SENT == []


def test_one_restore_per_object_however_many_ask(archive, instance, archived):
    for person in ("a@example.org", "b@example.org", "c@example.org"):
        _submit(
            archive,
            tenant="lab",
            files=[{"requestId": "lab-a"}, {"checksum": archived["lab-a"]["checksum"]}],
            days=2,
            tier="Bulk",
            requester=person,
        )
    result = _run_restore(archive, instance)
    assert result.success and len(SENT) == 1
    assert {r["status"] for r in _report(archive)} == {"READY"} and len(_report(archive)) == 6


def test_restore_already_in_progress_counts_as_started(archive, instance, archived):
    from botocore.exceptions import ClientError

    class Busy(CapturingStore):
        def client(self):
            client = super().client()

            def refuse(**_):
                raise ClientError({"Error": {"Code": "RestoreAlreadyInProgress", "Message": "in progress"}}, "RestoreObject")

            client.meta.events.register("before-call.s3.RestoreObject", refuse)
            return client

    _submit(archive, tenant="lab", files=[{"requestId": "lab-a"}], days=1, tier="Standard", requester="a@example.org")
    defs = archive.defs()
    instance.add_dynamic_partitions("tenants", ["lab"])
    job = archive.defs(archive_store=Busy(**defs.resources["archive_store"].model_dump())).resolve_job_def("restore_job")
    result = job.execute_in_process(partition_key="lab", instance=instance, raise_on_error=False)
    assert result.success
    assert materializations(result)["restore_requests"]["joined_or_already_restored"] == 1
    assert [r["status"] for r in _report(archive)] == ["IN_PROGRESS"]  # moto never restored it: waiting


def test_object_already_restored_with_enough_days_is_not_restored_again(archive, instance, archived):
    key = archived["lab-b"]["storedFileUrl"].split("/", 3)[3]
    s3_client().restore_object(Bucket=BUCKET, Key=key, RestoreRequest={"Days": 10, "GlacierJobParameters": {"Tier": "Bulk"}})
    _submit(archive, tenant="lab", files=[{"requestId": "lab-b"}], days=2, tier="Bulk", requester="a@example.org")
    result = _run_restore(archive, instance)
    assert result.success and SENT == []
    assert [r["status"] for r in _report(archive)] == ["READY"]


def test_standard_objects_are_served_without_a_restore(archive, instance, monkeypatch):
    monkeypatch.setenv("GLACIER_STORAGE_CLASS", "STANDARD")
    archive.submit(archive.request("lab", archive.file("s", b"hot"), b"hot", requestId="hot"))
    assert archive.run("lab", instance).success
    _submit(archive, tenant="lab", files=[{"requestId": "hot"}], days=1, tier="Expedited", requester="a@example.org")
    assert _run_restore(archive, instance).success
    assert SENT == []
    [row] = _report(archive)
    assert row["status"] == "READY" and row["estimatedCostUsd"] is None
    assert any("without a restore" in m for m in row["messages"])


def test_pending_restore_completes_later_through_polling(archive, instance, archived):
    from moto.moto_api import state_manager

    from glacier_pipelines.defs.restore.sensors import restore_completed_sensor

    time.sleep(1.1)  # moto delays a restore only for objects older than the delay
    state_manager.set_transition(model_name="s3::keyrestore", transition={"progression": "time", "seconds": 1})
    try:
        _submit(archive, tenant="lab", files=[{"requestId": "lab-c"}], days=1, tier="Bulk", requester="a@example.org")
        assert _run_restore(archive, instance).success
        assert [r["status"] for r in _report(archive)] == ["IN_PROGRESS"]
        resources = archive.defs().resources
        tick = restore_completed_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert tick.run_requests == []  # not restored yet, nothing to deliver (the poll is scheduled, not repeated)
        from glacier_pipelines.flows import restore as flow

        setup = resources["restore"].setup(resources["catalog"], resources["archive_store"])
        time.sleep(1.2)
        checked, completed = flow.poll(setup, now=datetime.now(timezone.utc) + timedelta(minutes=2))
        assert (checked, completed) == (1, 1)
        tick = restore_completed_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert [r.partition_key for r in tick.run_requests] == ["lab"]
        assert _run_restore(archive, instance).success
        assert [r["status"] for r in _report(archive)] == ["READY"]
    finally:
        state_manager.unset_transition("s3::keyrestore")


def test_polling_backs_off_and_gives_up_only_after_twice_the_documented_delay(archive, instance, archived):
    from glacier_pipelines.catalog.restores import RestoreStore
    from glacier_pipelines.flows import restore as flow

    _, setup = _submit(archive, tenant="lab", files=[{"requestId": "lab-a"}], days=1, tier="Bulk", requester="a@example.org")
    obj, _, _ = RestoreStore(setup.catalog).resolve(
        "lab", __import__("glacier_pipelines.core.restores", fromlist=["FileSelector"]).FileSelector(requestId="lab-a")
    )
    start = datetime.now(timezone.utc)
    setup.store.set_object_state(obj.id, state="REQUESTED", tier="Bulk", days=1, requested_at=start, next_poll_at=start, poll_attempts=0)
    setup.s3 = _NeverRestored(setup.s3)
    delays, now = [], start
    while setup.store.object_state(obj.id)["state"] == "REQUESTED":
        flow.poll(setup, now=now)
        nxt = setup.store.object_state(obj.id)["next_poll_at"]
        delays.append((nxt - now).total_seconds())
        now = nxt
        assert len(delays) < 200
    failed_after = now - start
    assert setup.store.object_state(obj.id)["state"] == "FAILED"
    assert timedelta(hours=96) <= failed_after <= timedelta(hours=96 + 6)  # DEEP_ARCHIVE Bulk: 48 h documented, twice over
    assert delays[:4] == [120.0, 240.0, 480.0, 960.0] and max(delays) == 6 * 3600
    assert len(delays) < 40  # a few dozen HEADs for four days, not thousands


class _NeverRestored:
    def __init__(self, s3):
        self._s3 = s3

    def head_object(self, **kw):
        return {**self._s3.head_object(**kw), "Restore": 'ongoing-request="true"'}

    def __getattr__(self, name):
        return getattr(self._s3, name)


def _sqs_queue():
    sqs = boto3.client("sqs", region_name="us-east-1")
    return sqs, sqs.create_queue(QueueName=f"restore-events-{time.time_ns()}")["QueueUrl"]


def _s3_event(key: str, when: str = "2026-11-22T10:00:00.000Z") -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": "us-east-1",
                    "eventTime": when,
                    "eventName": "ObjectRestore:Completed",
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"},
                        "object": {"key": quote_plus(key, safe=""), "size": 500, "sequencer": "0055AED6DCD90281E5"},
                    },
                    "glacierEventData": {
                        "restoreEventData": {
                            "lifecycleRestorationExpiryTime": "2030-01-01T00:00:00.000Z",
                            "lifecycleRestoreStorageClass": "DEEP_ARCHIVE",
                        }
                    },
                }
            ]
        }
    )


def _eventbridge_event(key: str) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": "17793124-05d4-b198-2fde-7ededc63b103",
            "detail-type": "Object Restore Completed",
            "source": "aws.s3",
            "account": "123456789012",
            "time": "2026-11-22T10:00:00Z",
            "region": "us-east-1",
            "resources": [f"arn:aws:s3:::{BUCKET}"],
            "detail": {
                "version": "0",
                "bucket": {"name": BUCKET},
                "object": {"key": key, "size": 500},
                "request-id": "189F19CB7FB1B6A4",
                "requester": "s3.amazonaws.com",
                "restore-expiry-time": "2030-01-01T00:00:00Z",
                "source-storage-class": "DEEP_ARCHIVE",
            },
        }
    )


def test_restore_events_from_sqs_in_both_formats_with_duplicates_and_strangers(archive, instance, archived, monkeypatch):
    from glacier_pipelines.catalog.restores import RestoreStore
    from glacier_pipelines.defs.restore.sensors import restore_completed_sensor

    sqs, queue_url = _sqs_queue()
    monkeypatch.setenv("GLACIER_RESTORE_EVENTS_QUEUE_URL", queue_url)
    _, setup = _submit(
        archive, tenant="lab", files=[{"requestId": "lab-a"}, {"requestId": "lab-b"}], days=1, tier="Bulk", requester="a@example.org"
    )
    store = RestoreStore(setup.catalog)
    for rid in ("lab-a", "lab-b"):  # restores started earlier, finished in S3, not yet noticed by us
        obj = store.object_at(BUCKET, archived[rid]["storedFileUrl"].split("/", 3)[3])
        store.set_object_state(obj.id, state="REQUESTED", tier="Bulk", days=1, requested_at=datetime.now(timezone.utc))
        s3_client().restore_object(Bucket=BUCKET, Key=obj.key, RestoreRequest={"Days": 1, "GlacierJobParameters": {"Tier": "Bulk"}})
    store.update([r["id"] for r in store.rows(tenant="lab")], status="IN_PROGRESS")
    key_a = archived["lab-a"]["storedFileUrl"].split("/", 3)[3]
    key_b = archived["lab-b"]["storedFileUrl"].split("/", 3)[3]
    for body in (
        json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET}),
        _s3_event(key_a),
        _s3_event(key_a),
        _eventbridge_event(key_b),
        _s3_event("archive/lab/dir/not ours"),
        "not json at all",
    ):
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)

    resources = archive.defs().resources
    tick = restore_completed_sensor(dg.build_sensor_context(instance=instance, resources=resources))

    assert json.loads(tick.cursor) == {"events": 3, "unknown": 1}
    assert [r.partition_key for r in tick.run_requests] == ["lab"]
    assert sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0).get("Messages") is None  # all handled and deleted
    assert store.object_state(store.object_at(BUCKET, key_a).id)["state"] == "RESTORED"
    again = restore_completed_sensor(dg.build_sensor_context(instance=instance, resources=resources, cursor=tick.cursor))
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in tick.run_requests]  # duplicates add no run
    assert _run_restore(archive, instance).success
    assert {r["status"] for r in _report(archive)} == {"READY"}


def test_restored_bytes_that_differ_fail_the_check_and_send_no_link(archive, instance, archived, smtp_server):
    key = archived["lab-a"]["storedFileUrl"].split("/", 3)[3]
    s3_client().put_object(Bucket=BUCKET, Key=key, Body=b"bit rot", StorageClass="DEEP_ARCHIVE")  # the archive rotted
    _submit(archive, tenant="lab", files=[{"requestId": "lab-a"}, {"requestId": "lab-b"}], days=1, tier="Bulk", requester="a@example.org")
    result = _run_restore(archive, instance)
    assert not result.success
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and key in check.metadata["mismatched_objects"].value
    rows = {r["storedFileUrl"]: r for r in _report(archive)}
    bad = rows[archived["lab-a"]["storedFileUrl"]]
    assert bad["status"] == "FAILED" and bad["downloadUrl"] is None and "differ" in bad["messages"][-1]
    assert rows[archived["lab-b"]["storedFileUrl"]]["status"] == "READY"
    [raw] = smtp_server.messages
    text = email.message_from_string(raw, policy=email.policy.default).get_content()
    assert archived["lab-b"]["storedFileUrl"] in text and archived["lab-a"]["storedFileUrl"] not in text


def test_requester_email_has_links_expiry_and_cost(archive, instance, archived, smtp_server):
    _submit(
        archive,
        tenant="lab",
        files=[{"requestId": "lab-a"}, {"requestId": "lab-c"}],
        days=5,
        tier="Standard",
        requester="reader@example.org",
        note="for the exhibition",
    )
    assert _run_restore(archive, instance).success
    [raw] = smtp_server.messages
    mail = email.message_from_string(raw, policy=email.policy.default)
    text = mail.get_content()
    rows = _report(archive)
    assert mail["To"] == "reader@example.org" and "for the exhibition" in text
    for row in rows:
        assert row["downloadUrl"] in text
        assert f"${row['estimatedCostUsd']:.4f}" in text
    assert "link valid until" in text and "verified" in text


def test_ready_links_expire(archive, instance, archived):
    _, setup = _submit(archive, tenant="lab", files=[{"requestId": "lab-a"}], days=1, tier="Bulk", requester="a@example.org")
    assert _run_restore(archive, instance).success
    [row] = setup.store.rows(tenant="lab")
    setup.store.update([row["id"]], expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
    from glacier_pipelines.flows import restore as flow

    report = flow.deliver(setup, "lab", "later-run")
    assert report.expired == 1
    [row] = _report(archive)
    assert row["status"] == "EXPIRED" and row["downloadUrl"] is None


def test_expedited_is_sent_for_glacier_flexible_retrieval(archive, instance, monkeypatch):
    monkeypatch.setenv("GLACIER_STORAGE_CLASS", "GLACIER")
    archive.submit(archive.request("lab", archive.file("g", b"flexible"), b"flexible", requestId="flex"))
    assert archive.run("lab", instance).success
    result = _run_restore(
        archive, instance, config={"request_ids": ["flex"], "days": 1, "tier": "Expedited", "requester": "urgent@example.org"}
    )
    assert result.success
    assert [p["RestoreRequest"] for p in SENT] == [{"Days": 1, "GlacierJobParameters": {"Tier": "Expedited"}}]
    [row] = _report(archive)
    assert row["status"] == "READY" and row["tier"] == "Expedited" and row["estimatedCostUsd"] > 0
