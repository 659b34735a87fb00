"""`catalog rebuild` gives back the same catalog (issue #17): the full report before the catalog is lost and after its rebuild."""

from __future__ import annotations

import hashlib

import dagster as dg
import pytest
import sqlalchemy as sa

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.catalog import tables as t
from glacier_pipelines.flows.rebuild import rebuild
from glacier_pipelines_tests.conftest import BUCKET, image_bytes, s3_client
from glacier_pipelines_tests.flows.test_moves import moves  # noqa: F401  (the fixture)
from glacier_pipelines_tests.integration.conftest import postgres_url  # noqa: F401  (the fixture, for catalog_backend)

COMPARED = (
    "requestId",
    "tenant",
    "status",
    "checksum",
    "algorithm",
    "storedFileUrl",
    "fileSizeInBytes",
    "widthInPx",
    "heightInPx",
    "storageClass",
    "deduplicated",
)


@pytest.fixture(autouse=True)
def _on_sqlite_and_postgresql(catalog_backend):
    """Run on both catalog databases."""


def _lose_the_catalog(catalog: Catalog) -> Catalog:
    """Every table dropped (schema bookkeeping included), then a new catalog at the same URL."""
    from glacier_pipelines.resources.archive import _catalogs

    engine = catalog.engine
    everything = sa.MetaData()
    everything.reflect(engine)
    everything.drop_all(engine)
    _catalogs.pop(catalog.url, None)
    catalog.dispose()
    return Catalog(catalog.url)


def _report(catalog: Catalog) -> dict[tuple[str, str], dict]:
    return {(r["tenant"], r["requestId"]): {k: r[k] for k in COMPARED} for r in catalog.report()}


def test_rebuild_gives_back_the_same_report_for_every_kind_of_stored_file(archive, instance, monkeypatch):
    monkeypatch.setenv("GLACIER_PACKAGE_THRESHOLD_BYTES", "1000")
    plain = b"a file stored alone, big enough not to be packed" * 40
    png = image_bytes("PNG", (31, 17))
    small = [hashlib.sha256(bytes([i])).digest() * 20 for i in range(2)]
    archive.submit(
        archive.request("lab", archive.file("plain", plain), plain, requestId="plain"),
        archive.request("lab", archive.file("plain-copy", plain), plain, algorithm="SHA-256", requestId="plain-again"),  # dedup
        archive.request("lab", archive.file("img.png", png), png, requestId="img", computeImageSize=True),
        archive.request("lab", archive.file("m0", small[0]), small[0], requestId="m0", activateSmallFilePackaging=True),
        archive.request("lab", archive.file("m1", small[1]), small[1], requestId="m1", activateSmallFilePackaging=True),
        archive.request("museum", archive.file("museum-plain", plain), plain, requestId="same-bytes-other-tenant"),
    )
    for tenant in ("lab", "museum"):
        assert archive.run(tenant, instance).success
    close = archive.defs().resolve_job_def("package_job")
    assert close.execute_in_process(
        partition_key="lab", instance=instance, run_config={"ops": {"glacier_packages": {"config": {"close_all": True}}}}
    ).success
    # Content already in a stored package, asked for again: deduplicated onto the member.
    archive.submit(
        archive.request("lab", archive.file("m0-again", small[0]), small[0], requestId="m0-again", activateSmallFilePackaging=True)
    )
    assert archive.run("lab", instance).success
    catalog = archive.catalog()
    before = _report(catalog)
    assert {r["status"] for r in before.values()} == {"SUCCESS"} and len(before) == 7
    assert before[("lab", "plain-again")]["deduplicated"] and before[("lab", "m0-again")]["deduplicated"]
    assert "?member=" in before[("lab", "m0-again")]["storedFileUrl"]
    assert (before[("lab", "img")]["widthInPx"], before[("lab", "img")]["heightInPx"]) == (31, 17)
    # A restore in progress (moto restores at once: S3 then reports the restored copy and its expiry).
    plain_key = before[("lab", "plain")]["storedFileUrl"].split(f"s3://{BUCKET}/", 1)[1]
    s3_client().restore_object(Bucket=BUCKET, Key=plain_key, RestoreRequest={"Days": 3, "GlacierJobParameters": {"Tier": "Bulk"}})

    fresh = _lose_the_catalog(catalog)
    assert fresh.report() == []
    counts = rebuild(fresh, s3_client(), BUCKET, "archive")

    assert _report(fresh) == before
    assert counts["unresolved"] == 0 and counts["restores"] == 1
    with fresh.engine.connect() as conn:
        restored = conn.execute(sa.select(t.object_restores.c.state, t.object_restores.c.expires_at)).all()
    assert [state for state, _ in restored] == ["RESTORED"] and restored[0][1] is not None
    # Deduplication keeps working on the rebuilt catalog: the same bytes again are not stored again.
    assert fresh.find_object("lab", "MD5", hashlib.md5(plain).hexdigest()) is not None
    again = rebuild(fresh, s3_client(), BUCKET, "archive")
    assert again["ledger_requests"] == again["members"] == 0 and _report(fresh) == before  # idempotent


def test_catalog_rebuild_is_an_asset_run_by_hand(archive, instance):
    data = b"one file"
    archive.submit(archive.request("lab", archive.file("one", data), data, requestId="one"))
    assert archive.run("lab", instance).success
    before = _report(archive.catalog())
    _lose_the_catalog(archive.catalog())
    defs = archive.defs()
    assert defs.resolve_assets_def("catalog_rebuild").group_names_by_key[dg.AssetKey("catalog_rebuild")] == "operations"
    job = dg.define_asset_job("rebuild", selection="catalog_rebuild").resolve(asset_graph=defs.resolve_asset_graph())
    result = job.execute_in_process(instance=instance, resources=defs.resources)
    assert result.success
    meta = {k: v.value for ev in result.get_asset_materialization_events() for k, v in ev.materialization.metadata.items()}
    assert meta["ledger_requests"] == 1 and meta["objects"] == 1
    assert _report(archive.catalog()) == before


def test_a_moved_object_comes_back_where_and_as_it_now_lives(archive, instance, moves, monkeypatch):
    """An archived file moved in place into another class (server-side copy): after a rebuild its request names the same
    URL, in the class the move gave it."""
    from glacier_pipelines.flows import moves as move_flow

    monkeypatch.setenv("GLACIER_STORAGE_CLASS", "STANDARD")
    data = b"archived in STANDARD first, then moved to DEEP_ARCHIVE" * 30
    archive.submit(archive.request("lab", archive.file("mv", data), data, requestId="moved"))
    assert archive.run("lab", instance).success
    url = archive.report("lab")["moved"]["storedFileUrl"]
    report = move_flow.move(moves(), move_flow.MoveRequest(tenant="lab", url=url, storage_class="DEEP_ARCHIVE"))
    assert [o.status for o in report.outcomes] == [move_flow.MOVED]
    before = _report(archive.catalog())
    assert before[("lab", "moved")]["storageClass"] == "DEEP_ARCHIVE"

    fresh = _lose_the_catalog(archive.catalog())
    rebuild(fresh, s3_client(), BUCKET, "archive")
    assert _report(fresh) == before
