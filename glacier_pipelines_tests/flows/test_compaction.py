"""Package compaction (in-process moto): a mostly-deleted package is restored (archive classes), read only once x-amz-restore says
the copy is ready, its live members repacked, their old storedFileUrls kept answering through aliases, the old package deleted with
its early-deletion charge in the cost report."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone

import pytest

from glacier_pipelines.catalog.compaction import CompactionStore
from glacier_pipelines.catalog.restores import RestoreStore
from glacier_pipelines.catalog.worker_requests import deletions
from glacier_pipelines.core import pricing
from glacier_pipelines.core import transport as tp
from glacier_pipelines.core import worker_requests as wr
from glacier_pipelines.core.packaging import parse_manifest, parse_member_url
from glacier_pipelines.flows import availability, compaction, deletion, intake, restoration
from glacier_pipelines_tests.conftest import BUCKET, archived_keys, responses_of, s3_client
from glacier_pipelines_tests.flows.test_trash import _archive_members
from glacier_pipelines_tests.integration.conftest import postgres_url  # noqa: F401  (fixture, for catalog_backend)

MEMBERS = {"m1": b"1" * 9000, "m2": b"2" * 7000, "m3": b"3" * 4000, "m4": b"4" * 3000}  # m1 + m2: 70% of the bytes


class Recording:
    """The moto client, recording HeadObject (with the Restore header it returned), RestoreObject and GetObject in order;
    ``in_progress`` makes HeadObject answer a requested restore still under way, as S3 does for hours."""

    def __init__(self, client):
        self.client, self.calls, self.in_progress = client, [], False

    def head_object(self, **kw):
        head = self.client.head_object(**kw)
        if self.in_progress and head.get("Restore"):  # moto restores at once: S3 would still be at work
            head = {**head, "Restore": 'ongoing-request="true"'}
        self.calls.append(("HeadObject", kw["Key"], head.get("Restore")))
        return head

    def restore_object(self, **kw):
        self.calls.append(("RestoreObject", kw["Key"], None))
        return self.client.restore_object(**kw)

    def get_object(self, **kw):
        self.calls.append(("GetObject", kw["Key"], None))
        return self.client.get_object(**kw)

    def __getattr__(self, name):
        return getattr(self.client, name)


def _delete(archive, *request_ids):
    for rid in request_ids:
        archive.transport().publish_request(
            {tp.HEADER_CONTENT_TYPE: wr.DELETION, tp.HEADER_TENANT: "lab", tp.HEADER_REQUEST_ID: f"del-{rid}"},
            json.dumps({"file": {"requestId": rid}}).encode(),
        )
    intake.drain_requests(archive.transport(), archive.catalog())
    setup = archive.defs().resources["archive_store"].deletion_setup(archive.defs().resources["catalog"], pricing.load_pricing("us-east-1"))
    assert deletion.process(setup).answered == {"SUCCESS": len(request_ids)}
    return setup


def _setup(archive, s3=None):
    from glacier_pipelines.resources.archive import archive_setup

    r = archive.defs().resources
    setup = archive_setup(r["catalog"], r["archive_store"], r["sources"], r["request_transport"])
    if s3 is not None:
        setup = dataclasses.replace(setup, s3=s3)
    return compaction.CompactionSetup(
        archive=setup, deletion=r["archive_store"].deletion_setup(r["catalog"], pricing.load_pricing("us-east-1"))
    )


def test_an_archived_package_is_restored_read_when_ready_repacked_and_its_old_urls_keep_answering(archive, catalog_backend, monkeypatch):
    _archive_members(archive, monkeypatch, MEMBERS)
    old_urls = {rid: row["storedFileUrl"] for rid, row in archive.report().items()}
    old_tar = parse_member_url(old_urls["m3"])[1]
    responses_of(archive)
    _delete(archive, "m1", "m2")
    answers = responses_of(archive)
    assert any("due for repacking" in m for m in answers["del-m2"]["messages"])
    recording = Recording(s3_client())
    setup = _setup(archive, recording)

    recording.in_progress = True  # pass 1: the restore is requested and still under way, nothing is read
    first = compaction.compact(setup, "lab")
    assert first.due == 1 and first.restores_requested == [f"s3://{BUCKET}/{old_tar}"] and first.compacted == []
    assert "restore under way" in first.waiting[0]
    assert [c[0] for c in recording.calls].count("RestoreObject") == 1 and "GetObject" not in [c[0] for c in recording.calls]
    [row] = CompactionStore(archive.catalog()).rows("lab")
    assert row["state"] == "RESTORING" and row["restore_requested_at"] is not None
    assert (
        RestoreStore(archive.catalog()).object_state(archive.catalog().objects("lab")[0].id)["state"] == "REQUESTED"
    )  # shared with restores

    recording.in_progress = False  # pass 2: x-amz-restore says ongoing-request="false": read, repack, switch, delete the old one
    recording.calls.clear()
    second = compaction.compact(setup, "lab")
    ops = [c[0] for c in recording.calls]
    assert "RestoreObject" not in ops  # requested once
    read = ops.index("GetObject")
    assert recording.calls[read][1] == old_tar
    last_head = [c for c in recording.calls[:read] if c[0] == "HeadObject" and c[1] == old_tar][-1]
    assert last_head[2].startswith('ongoing-request="false"')
    [done] = second.compacted
    assert done["liveMembers"] == 2 and done["bytesAfter"] < done["bytesBefore"] and done["earlyDeletionChargeUsd"] > 0

    new_tar = done["newUrl"].removeprefix(f"s3://{BUCKET}/")
    assert new_tar.startswith("archive/lab/packages/") and new_tar != old_tar
    assert archived_keys() == sorted([new_tar, new_tar + ".manifest.jsonl"])  # the old tar and manifest are gone
    assert s3_client().head_object(Bucket=BUCKET, Key=new_tar)["StorageClass"] == "DEEP_ARCHIVE"
    manifest = parse_manifest(s3_client().get_object(Bucket=BUCKET, Key=new_tar + ".manifest.jsonl")["Body"].read())
    assert sorted(m["request_id"] for m in manifest) == ["m3", "m4"]
    report = archive.report()
    assert {report[r]["status"] for r in ("m3", "m4")} == {"SUCCESS"} and report["m3"]["storedFileUrl"].startswith(done["newUrl"])
    assert CompactionStore(archive.catalog()).rows("lab")[0]["state"] == "DONE"
    with archive.catalog().engine.connect() as conn:
        charged = [dict(r._mapping) for r in conn.execute(deletions.select().where(deletions.c.deletion_request_id.like("compaction:%")))]
    assert [c["url"] for c in charged] == [f"s3://{BUCKET}/{old_tar}"] and charged[0]["early_deletion_charge_usd"] == pytest.approx(
        done["earlyDeletionChargeUsd"]
    )
    from glacier_pipelines.flows import costs

    table = costs.cost_table(archive.catalog(), pricing.load_pricing("us-east-1"), "lab")
    early = table[table["kind"] == "early deletion (charged)"]
    assert list(early["storage_class"]) == ["DEEP_ARCHIVE"] and float(early["usd"].sum()) == pytest.approx(done["earlyDeletionChargeUsd"])

    # The old storedFileUrls still name the files: availability, restoration and deletion find them where they are now.
    restores = RestoreStore(archive.catalog())
    from glacier_pipelines.core.restores import FileSelector

    answer = availability.availability_of(restores, "lab", FileSelector(url=old_urls["m3"]), datetime.now(timezone.utc))
    assert answer["file"] == f"url {old_urls['m3']}" and answer["storedFileUrl"] == report["m3"]["storedFileUrl"]
    archive.transport().publish_request(
        {tp.HEADER_CONTENT_TYPE: wr.RESTORATION, tp.HEADER_TENANT: "lab", tp.HEADER_REQUEST_ID: "rest-old"},
        json.dumps({"files": [{"url": old_urls["m4"]}], "days": 1}).encode(),
    )
    intake.drain_requests(archive.transport(), archive.catalog())
    r = archive.defs().resources
    restoration.submit_pending(r["restore"].setup(r["catalog"], r["archive_store"]))
    [restore_row] = restores.rows(tenant="lab")
    assert restore_row["status"] != "REFUSED" and restore_row["member"]["name"] == parse_member_url(report["m4"]["storedFileUrl"])[2]
    _delete(archive, "m3")  # by request id; and by the old URL:
    archive.transport().publish_request(
        {tp.HEADER_CONTENT_TYPE: wr.DELETION, tp.HEADER_TENANT: "lab", tp.HEADER_REQUEST_ID: "del-old-url"},
        json.dumps({"file": {"url": old_urls["m4"]}}).encode(),
    )
    intake.drain_requests(archive.transport(), archive.catalog())
    deletion.process(_setup(archive).deletion)
    assert responses_of(archive)["del-old-url"]["content"]["deletedRequests"] == ["m4"]
    assert archived_keys() == []  # the new package went with its last live member


def test_a_readable_package_is_repacked_at_the_tenants_own_share_by_the_dagster_asset(archive, instance, monkeypatch, tmp_path):
    monkeypatch.setenv("GLACIER_STORAGE_CLASS", "GLACIER_IR")
    config = tmp_path / "tenants.toml"
    config.write_text(f'[tenants.lab]\nbucket = "{BUCKET}"\ncompact_deleted_share = 0.4\n')
    monkeypatch.setenv("GLACIER_TENANTS_CONFIG", str(config))
    members = {"a": b"a" * 400, "b": b"b" * 300, "c": b"c" * 300}  # deleting a: 40%, under the default 0.5, at lab's 0.4
    _archive_members(archive, monkeypatch, members)
    old_b = archive.report()["b"]["storedFileUrl"]
    _delete(archive, "a")
    job = archive.defs().resolve_job_def("package_compaction_job")
    if not instance.has_dynamic_partition("tenants", "lab"):
        instance.add_dynamic_partitions("tenants", ["lab"])
    result = job.execute_in_process(partition_key="lab", instance=instance, raise_on_error=False)
    assert result.success
    meta = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}[
        "package_compaction"
    ]
    assert (meta["compacted"].value, meta["restores_requested"].value) == (1, 0)  # GLACIER_IR is read without a restore
    s3 = s3_client()
    for rid in ("b", "c"):
        bucket, key, name = parse_member_url(archive.report()[rid]["storedFileUrl"])
        entry = next(
            m for m in parse_manifest(s3.get_object(Bucket=bucket, Key=key + ".manifest.jsonl")["Body"].read()) if m["name"] == name
        )
        data = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={entry['offset']}-{entry['offset'] + entry['length'] - 1}")[
            "Body"
        ].read()
        assert data == members[rid]  # the member's bytes at its new offset
    assert CompactionStore(archive.catalog()).alias("lab", old_b) == archive.report()["b"]["storedFileUrl"]
    again = job.execute_in_process(partition_key="lab", instance=instance, raise_on_error=False)
    meta = {e.asset_key.to_user_string(): e.materialization.metadata for e in again.get_asset_materialization_events()}[
        "package_compaction"
    ]
    assert meta["due"].value == 0  # the new package has no deleted member
