"""GLACIER_STAGING_URL (issue #15): staged bytes live where every worker can read them, so no step needs another's disk."""

from __future__ import annotations

import hashlib
import shutil

import dagster as dg
import pytest

from glacier_pipelines_tests.conftest import archived_keys, s3_client
from glacier_pipelines_tests.defs.test_standalone_assets import CLOSE_ALL, materialize, said

STAGING = "archive-staging"


@pytest.fixture
def remote(packing, monkeypatch):
    s3_client().create_bucket(Bucket=STAGING)
    monkeypatch.setenv("GLACIER_STAGING_URL", f"s3://{STAGING}/staged")
    return packing


def staged() -> list[str]:
    return sorted(o["Key"] for o in s3_client().list_objects_v2(Bucket=STAGING).get("Contents", []))


def local_files(archive) -> list:
    return [p for p in (archive.home / "staging").rglob("*") if p.is_file()] if (archive.home / "staging").exists() else []


def _submit(archive):
    alone = b"a small file that goes up alone" * 50  # over the 1,000-byte package threshold
    members = [hashlib.sha256(bytes([i])).digest() * 20 for i in range(3)]
    archive.submit(
        archive.request("lab", archive.file("alone", alone), alone, requestId="alone"),
        *[
            archive.request("lab", archive.file(f"m{i}", m), m, requestId=f"m{i}", activateSmallFilePackaging=True)
            for i, m in enumerate(members)
        ],
    )


def test_steps_in_separate_runs_share_nothing_local(remote, instance):
    _submit(remote)
    assert materialize(remote, instance, dg.AssetSelection.assets("ingest_batch", "verified_files")).success
    assert len(staged()) == 4 and local_files(remote) == []  # every verified byte is in the staging bucket
    shutil.rmtree(remote.home / "staging", ignore_errors=True)  # as if the next steps ran on another machine

    assert materialize(remote, instance, dg.AssetSelection.assets("glacier_objects")).success
    assert materialize(remote, instance, dg.AssetSelection.assets("glacier_packages"), run_config=CLOSE_ALL).success

    assert {r["status"] for r in remote.report("lab").values()} == {"SUCCESS"}
    assert staged() == [], "staged objects are removed once their bytes are archived"
    assert len(archived_keys()) == 3  # the file alone, one package and its manifest
    assert local_files(remote) == []


def test_a_staged_object_altered_between_steps_is_answered_error(remote, instance):
    _submit(remote)
    assert materialize(remote, instance, dg.AssetSelection.assets("ingest_batch", "verified_files")).success
    alone_key = next(k for k in staged() if k.endswith(hashlib.md5(b"a small file that goes up alone" * 50).hexdigest()))
    member_key = next(k for k in staged() if k != alone_key)
    for key in (alone_key, member_key):
        s3_client().put_object(Bucket=STAGING, Key=key, Body=b"someone else's bytes")

    assert materialize(remote, instance, dg.AssetSelection.assets("glacier_objects")).success
    materialize(remote, instance, dg.AssetSelection.assets("glacier_packages"), run_config=CLOSE_ALL)

    report = remote.report("lab")
    assert report["alone"]["status"] == "ERROR" and "changed since it was verified" in report["alone"]["messages"][-1]
    assert said(remote, "alone") == ["ERROR"]
    bad = [rid for rid in ("m0", "m1", "m2") if report[rid]["status"] == "ERROR"]
    assert len(bad) == 1 and "no longer has the verified SHA-256" in report[bad[0]]["messages"][-1]
    assert {report[rid]["status"] for rid in ("m0", "m1", "m2") if rid not in bad} == {"SUCCESS"}
    assert "SUCCESS" not in said(remote, bad[0])


def test_stale_staged_objects_are_swept_and_live_ones_kept(remote, instance):
    from datetime import datetime, timedelta, timezone

    from glacier_pipelines.flows import archive as flow
    from glacier_pipelines.resources.archive import archive_setup

    _submit(remote)
    assert materialize(remote, instance, dg.AssetSelection.assets("ingest_batch", "verified_files")).success
    s3_client().put_object(Bucket=STAGING, Key="staged/lab/ff/left-by-a-killed-process", Body=b"orphan")
    r = remote.defs().resources
    setup = archive_setup(r["catalog"], r["archive_store"], r["sources"], r["request_transport"])
    removed = flow.sweep_staging(setup, "lab", now=datetime.now(timezone.utc) + timedelta(days=2))
    assert removed == [f"s3://{STAGING}/staged/lab/ff/left-by-a-killed-process"]
    assert len(staged()) == 4  # the verified files still wait for their steps


def test_a_staging_url_that_is_not_s3_or_a_folder_is_refused(monkeypatch, archive):
    from glacier_pipelines.resources import resources_from_env

    monkeypatch.setenv("GLACIER_STAGING_URL", "gs://bucket/prefix")
    with pytest.raises(ValueError, match="GLACIER_STAGING_URL"):
        resources_from_env()


def test_the_cost_report_counts_staged_objects_while_they_wait(remote, instance):
    from glacier_pipelines.core import pricing
    from glacier_pipelines.flows.costs import cost_table

    _submit(remote)
    assert materialize(remote, instance, dg.AssetSelection.assets("ingest_batch", "verified_files")).success
    prices = pricing.load_pricing("us-east-1")
    waiting = cost_table(remote.catalog(), prices, "lab")
    row = waiting[waiting["kind"] == "staging (per month)"].iloc[0]
    assert (row["objects"], row["storage_class"]) == (4, "STANDARD") and row["bytes"] == 50 * 31 + 3 * 640 and row["usd"] > 0
    assert materialize(remote, instance, dg.AssetSelection.assets("glacier_objects", "glacier_packages"), run_config=CLOSE_ALL).success
    done = cost_table(remote.catalog(), prices, "lab")
    assert "staging (per month)" not in set(done["kind"])
