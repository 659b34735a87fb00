"""lifecycle_rules with GLACIER_TENANTS_CONFIG (#16): each tenant's rules and the restored-copies backstop land on the tenant's
own bucket, scoped to its own prefix; the global bucket keeps only its backstop."""

from __future__ import annotations

from glacier_pipelines.core import lifecycle as lc
from glacier_pipelines_tests.conftest import BUCKET, materializations, s3_client
from glacier_pipelines_tests.defs.test_tenant_storage import LAB, MUSEUM, two_tenants  # noqa: F401  (the fixture)

TAG = [{"Key": "glacier-pipelines", "Value": "restored-copy"}]
RULES = """
[[tenants.lab.rules]]
name = "trash"
prefix = "trash/"
expiration_days = 3650

[[tenants.museum.rules]]
name = "uploads"
abort_incomplete_multipart_days = 7
"""


def _rules(bucket: str) -> dict[str, dict]:
    return {r["ID"]: r for r in s3_client().get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}


def test_each_tenants_rules_and_backstop_go_to_its_own_bucket_and_prefix(two_tenants, instance, tmp_path, monkeypatch):
    path = tmp_path / "lifecycle.toml"
    path.write_text(RULES)
    monkeypatch.setenv("GLACIER_LIFECYCLE_CONFIG", str(path))
    job = two_tenants.defs().resolve_job_def("lifecycle_job")
    meta = materializations(job.execute_in_process(instance=instance))["lifecycle_rules"]
    assert meta["buckets"] == ", ".join(sorted((BUCKET, LAB, MUSEUM))) and meta["added"] == 5

    lab = _rules(LAB)
    assert set(lab) == {"glacier-pipelines:lab:trash", lc.RESTORED_COPIES_RULE_ID}
    assert lab["glacier-pipelines:lab:trash"]["Filter"] == {"Prefix": "labs/lab/trash/"}
    assert lab[lc.RESTORED_COPIES_RULE_ID]["Filter"] == {"And": {"Prefix": "labs/", "Tags": TAG}}
    museum = _rules(MUSEUM)
    assert set(museum) == {"glacier-pipelines:museum:uploads", lc.RESTORED_COPIES_RULE_ID}
    assert museum["glacier-pipelines:museum:uploads"]["Filter"] == {"Prefix": "collections/museum/"}
    assert museum[lc.RESTORED_COPIES_RULE_ID]["Filter"] == {"And": {"Prefix": "collections/", "Tags": TAG}}
    assert set(_rules(BUCKET)) == {lc.RESTORED_COPIES_RULE_ID}  # no tenant's rule left on the global bucket

    again = materializations(job.execute_in_process(instance=instance))["lifecycle_rules"]
    assert (again["added"], again["changed"], again["removed"], again["unchanged"], again["written"]) == (0, 0, 0, 5, False)


def test_two_archive_prefixes_in_one_bucket_get_a_backstop_each():
    config = lc.parse_config(
        {"tenants": {"lab": {"rules": [{"name": "t", "prefix": "trash/", "expiration_days": 30}]}}},
        bucket="global-archive",
        key_prefix="archive",
        placements={"lab": ("shared-archive", "labs/"), "museum": ("shared-archive", "collections")},
    )
    assert config.buckets() == ["global-archive", "shared-archive"]
    shared = {r["ID"]: r for r in config.project_rules("shared-archive")}
    assert shared["glacier-pipelines:lab:t"]["Filter"] == {"Prefix": "labs/lab/trash/"}
    backstops = {r["Filter"]["And"]["Prefix"]: r["ID"] for r in shared.values() if r["ID"].startswith(lc.RESTORED_COPIES_RULE_ID)}
    assert backstops == {"collections/": lc.restored_copies_rule_id("collections"), "labs/": lc.restored_copies_rule_id("labs")}
    assert [r["ID"] for r in config.project_rules("global-archive")] == [lc.RESTORED_COPIES_RULE_ID]
    assert config.tenant("museum").own_prefix == "collections/museum/"


def test_a_source_inside_another_tenants_own_archive_is_refused():
    import pytest

    with pytest.raises(lc.LifecycleConfigError, match="reaches into the archive prefix of other tenants"):
        lc.parse_config(
            {"tenants": {"lab": {"sources": ["s3://museum-archive/collections/"]}}},
            bucket="global-archive",
            key_prefix="archive",
            placements={"lab": ("lab-archive", "labs"), "museum": ("museum-archive", "collections")},
        )
