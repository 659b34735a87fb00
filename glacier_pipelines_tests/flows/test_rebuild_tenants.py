"""`catalog rebuild` with GLACIER_TENANTS_CONFIG (#16): every tenant's own bucket and prefix is scanned as well as the global one."""

from __future__ import annotations

import dagster as dg
import pytest
import sqlalchemy as sa

from glacier_pipelines.catalog import tables as t

from glacier_pipelines.flows.rebuild import rebuild, scopes
from glacier_pipelines.resources import resources_from_env
from glacier_pipelines_tests.conftest import BUCKET, s3_client
from glacier_pipelines_tests.defs.test_tenant_storage import LAB, MUSEUM, _archive_both, two_tenants  # noqa: F401  (the fixture)
from glacier_pipelines_tests.flows.test_rebuild import _lose_the_catalog, _report
from glacier_pipelines_tests.integration.conftest import postgres_url  # noqa: F401  (the fixture, for catalog_backend)


@pytest.fixture(autouse=True)
def _on_sqlite_and_postgresql(catalog_backend):
    """Run on both catalog databases."""


def test_rebuild_scans_each_tenants_bucket_and_gives_back_the_same_report(two_tenants, instance):
    archive = two_tenants
    _archive_both(archive, instance)
    before = _report(archive.catalog())
    assert len(before) == 3 and {r["status"] for r in before.values()} == {"SUCCESS"}
    tenants = resources_from_env()["archive_store"].tenants()
    assert scopes(BUCKET, "archive", tenants) == [
        (BUCKET, "archive", None),
        (LAB, "labs/lab/", "lab"),
        (MUSEUM, "collections/museum/", "museum"),
    ]

    fresh = _lose_the_catalog(archive.catalog())
    alone = rebuild(fresh, s3_client(), BUCKET, "archive")  # the global bucket alone holds nothing of either tenant
    assert alone["ledger_requests"] == alone["objects"] == alone["manifests"] == 0 and _report(fresh) == {}
    counts = rebuild(fresh, s3_client(), BUCKET, "archive", tenants=tenants)
    assert _report(fresh) == before
    assert counts["unresolved"] == 0 and counts["manifests"] == counts["members"] == 1 and counts["ledger_requests"] == 2
    # the rows name the tenant the prefix belongs to, not the next key segment
    with fresh.engine.connect() as conn:
        rows = set(conn.execute(sa.select(t.objects.c.tenant, t.objects.c.bucket)))
    assert rows == {("lab", LAB), ("museum", MUSEUM)}


def test_the_catalog_rebuild_asset_reads_the_tenants_config(two_tenants, instance):
    archive = two_tenants
    _archive_both(archive, instance)
    before = _report(archive.catalog())
    _lose_the_catalog(archive.catalog())
    defs = archive.defs()
    job = dg.define_asset_job("rebuild", selection="catalog_rebuild").resolve(asset_graph=defs.resolve_asset_graph())
    result = job.execute_in_process(instance=instance, resources=defs.resources)
    assert result.success
    meta = {k: v.value for ev in result.get_asset_materialization_events() for k, v in ev.materialization.metadata.items()}
    assert f"s3://{LAB}/labs/lab/" in meta["source"] and f"s3://{MUSEUM}/collections/museum/" in meta["source"]
    assert _report(archive.catalog()) == before


def test_the_catalog_rebuild_command_reads_the_tenants_config(two_tenants, instance, capsys):
    from glacier_pipelines import cli

    archive = two_tenants
    _archive_both(archive, instance)
    before = _report(archive.catalog())
    _lose_the_catalog(archive.catalog())
    assert cli.main(["catalog", "rebuild", "--json"]) == 0
    assert _report(archive.catalog()) == before
