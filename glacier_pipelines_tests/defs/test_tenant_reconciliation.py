"""bucket_reconciliation with GLACIER_TENANTS_CONFIG (#19): each tenant is compared with its own bucket and prefix."""

from __future__ import annotations

from glacier_pipelines_tests.conftest import materializations, s3_client
from glacier_pipelines_tests.defs.test_operations import _check, _run
from glacier_pipelines_tests.defs.test_tenant_storage import LAB, MUSEUM, _archive_both, two_tenants  # noqa: F401  (the fixture)


def test_each_tenant_is_reconciled_against_its_own_bucket_and_prefix(two_tenants, instance):
    archive = two_tenants
    _archive_both(archive, instance)
    stored = archive.report()
    lab = _run(archive, instance, "reconciliation_job", tenant="lab")
    meta = materializations(lab)["bucket_reconciliation"]
    assert lab.success and _check(lab).passed
    assert (meta["bucket"], meta["prefix"]) == (LAB, "labs/lab/")
    assert meta["catalog_keys"] == meta["bucket_keys"] == 1 and (meta["missing"], meta["unnamed"], meta["catalog_rows_elsewhere"]) == (
        0,
        0,
        0,
    )
    assert meta["ledger_objects"] >= 1

    gone = stored["museum-b"]["storedFileUrl"].removeprefix(f"s3://{MUSEUM}/")
    s3_client().delete_object(Bucket=MUSEUM, Key=gone)
    museum = _run(archive, instance, "reconciliation_job", tenant="museum")
    check = _check(museum)
    meta = materializations(museum)["bucket_reconciliation"]
    assert (meta["bucket"], meta["prefix"]) == (MUSEUM, "collections/museum/")
    assert not check.passed and gone in check.metadata["missing_objects"].value
    assert meta["catalog_keys"] == 3 and meta["missing"] == 1 and meta["unnamed"] == 0  # the package, its manifest, the big file
    assert _check(_run(archive, instance, "reconciliation_job", tenant="lab")).passed  # lab's bucket is untouched
