"""The operators' trash for every file (in-process moto): archive-class objects and package members are marked with a deadline,
untrash gives the previous state back within the grace period, and after it the safe-deletion path deletes them."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest

from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.restores import RestoreStore
from glacier_pipelines.catalog.trash import TrashStore
from glacier_pipelines.catalog.worker_requests import deletions
from glacier_pipelines.core import pricing
from glacier_pipelines.core.moves import MoveError
from glacier_pipelines.core.restores import FileSelector
from glacier_pipelines.flows import trash as flow
from glacier_pipelines_tests.conftest import BUCKET, archived_keys, s3_client
from glacier_pipelines_tests.flows.test_moves import _archive_files, moves  # noqa: F401  (fixture)
from glacier_pipelines_tests.integration.conftest import postgres_url  # noqa: F401  (fixture, for catalog_backend)

LATER = timedelta(days=31)


def _setup(archive, move=None):
    r = archive.defs().resources
    return r["archive_store"].trash_setup(r["catalog"], move=move, pricing=pricing.load_pricing("us-east-1"))


def _archive_members(archive, monkeypatch, files: dict[str, bytes]) -> None:
    """Small files packed into one package (flows only): verified, added, the package closed and checked."""
    from glacier_pipelines.flows import archive as archive_flow
    from glacier_pipelines.flows import packaging
    from glacier_pipelines.resources.archive import archive_setup

    monkeypatch.setenv("GLACIER_PACKAGE_THRESHOLD_BYTES", "65536")
    archive.submit(
        *[
            archive.request("lab", archive.file(rid, data), data, requestId=rid, activateSmallFilePackaging=True)
            for rid, data in files.items()
        ]
    )
    r = archive.defs().resources
    setup = archive_setup(r["catalog"], r["archive_store"], r["sources"], r["request_transport"])
    batch, _ = archive_flow.claim_batch(setup.catalog, "lab", "setup", 100, lambda run: True)
    archive_flow.verify_batch(setup, batch, "lab", "setup")
    packaging.add_verified_members(setup, batch, "lab", "setup")
    assert packaging.close_due(setup, setup.packaging, "lab", "setup", close_all=True).closed == 1
    packaging.check_packages(setup, "lab")
    assert {archive.report()[rid]["status"] for rid in files} == {"SUCCESS"}


def _deletions(archive, what=None):
    with archive.catalog().engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(deletions.select().order_by(deletions.c.id))]
    return [r for r in rows if what is None or r["what"] == what]


def test_an_archive_class_file_is_trashed_in_the_catalog_and_untrashed_within_its_grace_period(archive):
    data = b"deep archive bytes" * 20
    _archive_files(archive, {"deep": data})  # the fixture's class: DEEP_ARCHIVE
    key = f"archive/lab/dir/{hashlib.md5(data).hexdigest()}"
    setup, now = _setup(archive), datetime.now(timezone.utc)
    out = flow.trash(setup, "lab", "deep", now=now)
    assert out["status"] == "TRASHED" and out["deadline"] == (now + timedelta(days=30)).isoformat()
    assert "DEEP_ARCHIVE: marked in the trash" in out["messages"][0] and "object stays where it is" in out["messages"][0]
    assert archived_keys() == [key]  # no S3 change: no copy, no delete
    assert s3_client().head_object(Bucket=BUCKET, Key=key)["StorageClass"] == "DEEP_ARCHIVE"
    assert archive.report()["deep"]["status"] == "SUCCESS"  # answers as before: a restore still finds it
    obj, request_id, _ = RestoreStore(archive.catalog()).resolve("lab", FileSelector(requestId="deep"))
    assert obj is not None and obj.key == key and request_id == "deep"
    assert flow.trash(setup, "lab", "deep")["status"] == "SKIPPED"
    with pytest.raises(MoveError, match="tenant museum has no archived file with request id 'deep'"):
        flow.trash(setup, "museum", "deep")
    back = flow.untrash(setup, "lab", "deep", now=now + timedelta(days=29))
    assert back["status"] == "RESTORED" and "taken out of the trash" in back["messages"][-1]
    assert [r["state"] for r in TrashStore(archive.catalog()).rows("lab")] == ["RESTORED"]
    assert flow.purge_due(setup, now=now + LATER).purged == []  # nothing left to purge: untrashed
    with pytest.raises(MoveError, match="no file in the trash with request id 'deep'"):
        flow.untrash(setup, "lab", "deep")
    again = flow.trash(setup, "lab", "deep", now=now)
    assert again["status"] == "TRASHED"
    with pytest.raises(MoveError, match="grace period ended"):
        flow.untrash(setup, "lab", "deep", now=now + LATER)
    assert archive.report()["deep"]["status"] == "SUCCESS" and archived_keys() == [key]


def test_after_the_grace_period_the_safe_deletion_path_runs_with_reference_counting_and_the_charge(archive, catalog_backend):
    data = b"shared by two requests" * 20
    _archive_files(archive, {"first": data})
    _archive_files(archive, {"second": data})  # deduplicated onto the first's object
    setup, now = _setup(archive), datetime.now(timezone.utc)
    flow.trash(setup, "lab", "first", now=now)
    assert flow.purge_due(setup, now=now + timedelta(days=29)).purged == []  # not yet due
    first = flow.purge_due(setup, now=now + LATER)
    assert first.purged == ["first"] and first.objects_deleted == 0  # the other request still refers to the bytes
    assert archive.report()["first"]["status"] == "DELETED" and len(archived_keys()) == 1
    flow.trash(setup, "lab", "second", now=now)
    second = flow.purge_due(setup, now=now + LATER)
    assert second.purged == ["second"] and second.objects_deleted == 1 and archived_keys() == []
    assert second.early_deletion_usd > 0  # DEEP_ARCHIVE deleted before its 180 days
    [removed] = _deletions(archive, "OBJECT")
    assert removed["deletion_request_id"].startswith("trash:") and removed["early_deletion_charge_usd"] == pytest.approx(
        second.early_deletion_usd
    )
    assert [r["state"] for r in TrashStore(archive.catalog()).rows("lab")] == ["PURGED", "PURGED"]
    ledger = [o["Key"] for o in s3_client().list_objects_v2(Bucket=BUCKET)["Contents"]]
    deleted_lines = [
        json.loads(line)
        for k in ledger
        for line in s3_client().get_object(Bucket=BUCKET, Key=k)["Body"].read().splitlines()
        if json.loads(line).get("status") == "DELETED"
    ]
    assert {e["requestId"] for e in deleted_lines} == {"first", "second"}  # a rebuild never brings them back


def test_a_package_member_is_trashed_and_its_package_goes_with_its_last_live_member(archive, monkeypatch):
    _archive_members(archive, monkeypatch, {"m1": b"one" * 100, "m2": b"two" * 100})
    package_keys = archived_keys()
    assert len(package_keys) == 2 and package_keys[0].endswith(".tar")  # the tar and its manifest
    setup, now = _setup(archive), datetime.now(timezone.utc)
    out = flow.trash(setup, "lab", "m1", now=now)
    assert out["status"] == "TRASHED" and "?member=dir/" in out["source"] and "package is not taken apart" in out["messages"][0]
    assert archived_keys() == package_keys
    assert flow.purge_due(setup, now=now + LATER).purged == ["m1"]
    assert archive.report()["m1"]["status"] == "DELETED" and archived_keys() == package_keys  # marked deleted, package kept
    flow.trash(setup, "lab", "m2", now=now)
    report = flow.purge_due(setup, now=now + LATER)
    assert report.purged == ["m2"] and report.objects_deleted == 1 and archived_keys() == []
    assert report.early_deletion_usd > 0


def test_a_readable_object_moves_under_the_trash_prefix_and_untrash_moves_it_back(archive, moves, monkeypatch):  # noqa: F811
    monkeypatch.setenv("GLACIER_STORAGE_CLASS", "STANDARD")
    data = b"an application's file"
    _archive_files(archive, {"app": data})
    md5 = hashlib.md5(data).hexdigest()
    setup = _setup(archive, move=moves())
    out = flow.trash(setup, "lab", "app")
    assert out["status"] == "MOVED" and out["destination"] == f"s3://{BUCKET}/archive/lab/trash/dir/{md5}" and out["deadline"]
    assert archive.catalog().find_object("lab", "MD5", md5) is None  # out of the content index while in the trash
    back = flow.untrash(setup, "lab", "app")
    assert back["status"] == "RESTORED" and back["source"] == f"s3://{BUCKET}/archive/lab/dir/{md5}"
    assert archived_keys() == [f"archive/lab/dir/{md5}"]
    assert archive.catalog().find_object("lab", "MD5", md5) is not None  # digests back
    assert archive.report()["app"]["storedFileUrl"] == f"s3://{BUCKET}/archive/lab/dir/{md5}"
    assert [r["status"] for r in setup.move.store.rows("lab") if r["kind"] == "TRASH"] == ["UNDONE"]
    assert flow.trash(setup, "lab", "app")["status"] == "MOVED"  # and it can be trashed again


def test_the_cli_trashes_and_untrashes_and_trash_purge_deletes_what_is_due(archive, instance, capsys):
    import dagster as dg

    from glacier_pipelines import cli

    data = b"by the command line" * 10
    _archive_files(archive, {"c1": data, "c2": b"kept" * 10})
    assert cli.main(["trash", "--tenant", "lab", "c1", "c2", "--json"]) == 0
    rows = {r["requestId"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["c1"]["status"] == rows["c2"]["status"] == "TRASHED"
    assert cli.main(["untrash", "--tenant", "lab", "c2", "nope", "--json"]) == 1
    rows = {r["requestId"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["c2"]["status"] == "RESTORED"
    assert rows["nope"] == {
        "requestId": "nope",
        "status": "FAILED",
        "messages": ["tenant lab has no file in the trash with request id 'nope'"],
    }
    assert cli.main(["untrash", "--tenant", "lab", "nope"]) == 2  # every id refused
    capsys.readouterr()
    assert cli.main(["trash", "--tenant", "lab", "c1", "--json"]) == 0  # already there
    assert json.loads(capsys.readouterr().out)[0]["status"] == "SKIPPED"
    assert [r["request_id"] for r in TrashStore(archive.catalog()).rows("lab", "TRASHED")] == ["c1"]
    with archive.catalog().engine.begin() as conn:  # the grace period has run out
        conn.execute(t.trash.update().values(deadline=datetime.now(timezone.utc) - timedelta(minutes=1)))
    result = archive.defs().resolve_job_def("trash_purge_job").execute_in_process(instance=instance, raise_on_error=False)
    assert result.success
    meta = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}["trash_purge"]
    assert meta["purged"].value == 1 and meta["objects_deleted"].value == 1 and meta["early_deletion_usd"].value > 0
    report = archive.report()
    assert (report["c1"]["status"], report["c2"]["status"]) == ("DELETED", "SUCCESS")
    assert isinstance(meta["purged_requests"], dg.MarkdownMetadataValue)


def test_a_deletion_request_for_a_trashed_file_deletes_it_and_closes_its_trash_entry(archive):
    from glacier_pipelines.flows import deletion
    from glacier_pipelines_tests.flows.test_deletion import _put

    _archive_files(archive, {"gone": b"asked for by its owner" * 10})
    setup, now = _setup(archive), datetime.now(timezone.utc)
    flow.trash(setup, "lab", "gone", now=now)
    _put(archive, "del-gone", {"file": {"requestId": "gone"}})
    assert deletion.process(setup.deletion).answered == {"SUCCESS": 1}
    assert archived_keys() == [] and [r["state"] for r in TrashStore(archive.catalog()).rows("lab")] == ["DELETED"]
    assert flow.purge_due(setup, now=now + LATER).purged == []  # nothing left in the trash
