"""Each archive asset stands alone (issue #14): materialized by itself for one tenant, it works on what the catalog
holds waiting for its step; the blocking checks answer the requests, so nothing failing a check was ever told SUCCESS."""

from __future__ import annotations

import hashlib

import dagster as dg
import pytest
import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t
from glacier_pipelines_tests.conftest import BUCKET, responses_of, s3_client


def materialize(archive, instance, selection: dg.AssetSelection, tenant: str | None = "lab", run_config=None) -> dg.ExecuteInProcessResult:
    """One materialization of ``selection`` alone, as the UI or `dagster asset materialize --select` starts it.

    A check run by itself has no partition in this Dagster (checks are not partitioned): it covers every tenant.
    """
    if tenant and not instance.has_dynamic_partition("tenants", tenant):
        instance.add_dynamic_partitions("tenants", [tenant])
    defs = archive.defs()
    job = dg.define_asset_job("alone", selection=selection).resolve(asset_graph=defs.resolve_asset_graph())
    return job.execute_in_process(
        partition_key=tenant, instance=instance, resources=defs.resources, raise_on_error=False, run_config=run_config
    )


def said(archive, request_id: str) -> list[str]:
    """Every response the outbox ever queued for a request, in order."""
    with archive.catalog().engine.connect() as conn:
        return (
            conn.execute(sa.select(t.responses.c.status).where(t.responses.c.request_id == request_id).order_by(t.responses.c.id))
            .scalars()
            .all()
        )


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    return {
        k: v.value
        for ev in result.get_asset_materialization_events()
        if ev.asset_key.to_user_string() == asset
        for k, v in ev.materialization.metadata.items()
    }


def check_result(result: dg.ExecuteInProcessResult, name: str):
    return next(c for c in result.get_asset_check_evaluations() if c.check_name == name)


def _submit_two(archive):
    a, b = b"first file", b"second file, a little longer"
    archive.submit(
        archive.request("lab", archive.file("a", a), a, requestId="a"), archive.request("lab", archive.file("b", b), b, requestId="b")
    )


def test_each_step_materialized_alone_in_its_own_run(archive, instance):
    _submit_two(archive)
    ingest = materialize(archive, instance, dg.AssetSelection.assets("ingest_batch"))
    assert ingest.success and metadata(ingest, "ingest_batch")["requests"] == 2
    assert {r["status"] for r in archive.report("lab").values()} == {"CLAIMED"}

    verify = materialize(archive, instance, dg.AssetSelection.assets("verified_files"))  # another run, nothing upstream in it
    assert verify.success, "verified_files must pick up the claimed requests of a finished run"
    assert metadata(verify, "verified_files")["verified"] == 2
    assert {r["status"] for r in archive.report("lab").values()} == {"VERIFIED"}

    store = materialize(archive, instance, dg.AssetSelection.assets("glacier_objects").without_checks())
    assert store.success and metadata(store, "glacier_objects")["stored"] == 2
    assert {r["status"] for r in archive.report("lab").values()} == {"STORED"}
    assert said(archive, "a") == said(archive, "b") == [], "nobody is told anything before the check read the object back"

    check = materialize(archive, instance, dg.AssetSelection.checks_for_assets("glacier_objects"), tenant=None)
    assert check.success
    evaluation = check_result(check, "checksum_integrity")
    assert evaluation.passed and evaluation.metadata["answered_success"].value == 2
    assert "`a`" in evaluation.metadata["requests"].value and "`b`" in evaluation.metadata["requests"].value
    assert {r["status"] for r in archive.report("lab").values()} == {"SUCCESS"}
    assert said(archive, "a") == said(archive, "b") == ["SUCCESS"]

    # Lineage for audits: the event log names, for this file, the run of each step and the check that passed on it.
    from glacier_pipelines.flows.audit import audit, render

    story = audit(archive.catalog(), instance, "a")
    by_run = {r["runId"]: r for r in story["runs"]}
    assert set(by_run) >= {ingest.run_id, verify.run_id, store.run_id, check.run_id}
    assert [m["namesThisFile"] for m in by_run[verify.run_id]["materializations"]] == [True]
    assert [m["namesThisFile"] for m in by_run[store.run_id]["materializations"]] == [True]
    assert [(c["check"], c["passed"], c["namesThisFile"]) for c in by_run[check.run_id]["checks"]] == [("checksum_integrity", True, True)]
    assert "check checksum_integrity on glacier_objects: PASSED (names this file)" in render(story)


@pytest.mark.parametrize("asset", ["ingest_batch", "verified_files", "glacier_objects", "glacier_packages"])
def test_nothing_waiting_ends_quickly_and_says_so(archive, instance, asset):
    result = materialize(archive, instance, dg.AssetSelection.assets(asset))
    assert result.success
    meta = metadata(result, asset)
    assert meta["nothing_waiting"] is True and "nothing" in meta["note"]


def test_rematerializing_after_success_changes_nothing(archive, instance):
    _submit_two(archive)
    assert archive.run("lab", instance).success
    before = archive.report("lab")
    again = materialize(archive, instance, dg.AssetSelection.assets("verified_files", "glacier_objects"))
    assert again.success
    assert metadata(again, "glacier_objects")["nothing_waiting"] is True
    assert archive.report("lab") == before
    assert said(archive, "a") == ["SUCCESS"]


def test_unknown_partition_is_refused_with_a_clear_message(archive, instance):
    defs = archive.defs()
    job = dg.define_asset_job("alone", selection="verified_files").resolve(asset_graph=defs.resolve_asset_graph())
    from dagster._core.errors import DagsterUnknownPartitionError

    with pytest.raises(DagsterUnknownPartitionError, match="Could not find a partition with key `no-such-tenant`"):
        job.execute_in_process(partition_key="no-such-tenant", instance=instance, resources=defs.resources)
    assert "no-such-tenant" not in instance.get_dynamic_partitions("tenants")


def test_object_altered_between_upload_and_check_is_answered_error(archive, instance):
    data = b"bytes that will rot in the bucket"
    archive.submit(archive.request("lab", archive.file("rot", data), data, requestId="rot"))
    stored = materialize(archive, instance, dg.AssetSelection.assets("ingest_batch", "verified_files", "glacier_objects").without_checks())
    assert stored.success
    key = next(o["Key"] for o in s3_client().list_objects_v2(Bucket=BUCKET)["Contents"])
    s3_client().put_object(Bucket=BUCKET, Key=key, Body=b"other bytes", StorageClass="DEEP_ARCHIVE", ChecksumAlgorithm="SHA256")

    check = materialize(archive, instance, dg.AssetSelection.checks_for_assets("glacier_objects"), tenant=None)

    assert not check.success  # blocking, ERROR severity
    evaluation = check_result(check, "checksum_integrity")
    assert not evaluation.passed and key in evaluation.metadata["mismatched_objects"].value
    row = archive.report("lab")["rot"]
    assert row["status"] == "ERROR" and any("checksum_integrity failed" in m for m in row["messages"])
    assert said(archive, "rot") == ["ERROR"]
    assert responses_of(archive)["rot"]["status"] == "ERROR"
    # Flagged: the same content sent again is stored anew, not deduplicated onto the rotten object.
    archive.submit(archive.request("lab", archive.file("rot2", data), data, requestId="rot-again"))
    assert archive.run("lab", instance).success
    again = archive.report("lab")["rot-again"]
    assert again["status"] == "SUCCESS" and not again["deduplicated"]
    assert said(archive, "rot-again") == ["SUCCESS"]


def _members(archive, n=3):
    reqs = []
    for i in range(n):
        data = hashlib.sha256(f"m{i}".encode()).digest() * 30
        reqs.append(archive.request("lab", archive.file(f"m{i}", data), data, requestId=f"m{i}", activateSmallFilePackaging=True))
    archive.submit(*reqs)
    return [r["requestId"] for r in reqs]


CLOSE_ALL = {"ops": {"glacier_packages": {"config": {"close_all": True}}}}


def _store_package_unchecked(archive, instance):
    assert materialize(archive, instance, dg.AssetSelection.assets("ingest_batch", "verified_files")).success
    stored = materialize(archive, instance, dg.AssetSelection.assets("glacier_packages").without_checks(), run_config=CLOSE_ALL)
    assert stored.success and metadata(stored, "glacier_packages")["packages_stored"] == 1
    return next(o["Key"] for o in s3_client().list_objects_v2(Bucket=BUCKET)["Contents"] if o["Key"].endswith(".tar"))


def test_package_members_are_answered_by_package_integrity_only(packing, instance):
    ids = _members(packing)
    _store_package_unchecked(packing, instance)
    assert {packing.report("lab")[i]["status"] for i in ids} == {"DELAYED"}
    assert all(said(packing, i) == ["DELAYED"] for i in ids)

    check = materialize(packing, instance, dg.AssetSelection.checks_for_assets("glacier_packages"), tenant=None)
    assert check.success
    evaluation = check_result(check, "package_integrity")
    assert evaluation.passed and evaluation.metadata["answered_success"].value == 3
    assert all(said(packing, i) == ["DELAYED", "SUCCESS"] for i in ids)


def test_altered_package_fails_package_integrity_and_its_members_are_answered_error(packing, instance):
    ids = _members(packing)
    key = _store_package_unchecked(packing, instance)
    s3_client().put_object(Bucket=BUCKET, Key=key, Body=b"not the tar that was built", ChecksumAlgorithm="SHA256")

    check = materialize(packing, instance, dg.AssetSelection.checks_for_assets("glacier_packages"), tenant=None)

    assert not check.success
    evaluation = check_result(check, "package_integrity")
    assert not evaluation.passed and evaluation.metadata["packages_with_problems"].value == 1
    assert "checksum" in evaluation.metadata["problems"].value
    for i in ids:
        row = packing.report("lab")[i]
        assert row["status"] == "ERROR" and any("package_integrity failed" in m for m in row["messages"])
        assert said(packing, i) == ["DELAYED", "ERROR"]
    assert packing.catalog().flagged_locations("lab")[0]["key"] == key


def test_a_manifest_that_disagrees_with_the_catalog_fails_package_integrity(packing, instance):
    ids = _members(packing)
    key = _store_package_unchecked(packing, instance)
    manifest_key = key + ".manifest.jsonl"
    body = s3_client().get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read().decode()
    s3_client().put_object(Bucket=BUCKET, Key=manifest_key, Body=body.replace('"offset": 512', '"offset": 1024', 1).encode())

    check = materialize(packing, instance, dg.AssetSelection.checks_for_assets("glacier_packages"), tenant=None)

    evaluation = check_result(check, "package_integrity")
    assert not evaluation.passed and "manifest says offset 1024" in evaluation.metadata["problems"].value
    assert {packing.report("lab")[i]["status"] for i in ids} == {"ERROR"}
