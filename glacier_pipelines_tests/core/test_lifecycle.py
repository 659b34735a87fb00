"""Lifecycle declarations: parsing and its refusals, rendering for S3, merging with the bucket's rules, the diff.

moto stores lifecycle rules but never applies them, so these tests check the rules written,
not S3's scheduler; the flow tests apply them to a moto bucket.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from glacier_pipelines.core import lifecycle as lc

BUCKET = "archive-test"
TRASH_RULE = {
    "name": "trash",
    "prefix": "trash/",
    "transitions": [{"days": 30, "storage_class": "GLACIER"}, {"days": 180, "storage_class": "DEEP_ARCHIVE"}],
    "expiration_days": 3650,
}


def parse(tenants: dict, **kw) -> lc.LifecycleConfig:
    return lc.parse_config({"tenants": tenants}, bucket=kw.get("bucket", BUCKET), key_prefix=kw.get("key_prefix", "archive"))


def problems(tenants: dict, **kw) -> list[str]:
    with pytest.raises(lc.LifecycleConfigError) as info:
        parse(tenants, **kw)
    assert str(info.value).startswith("lifecycle config: ")
    return info.value.problems


def test_the_issue_example_renders_as_s3_rules_scoped_to_the_tenant():
    config = parse({"lab": {"rules": [TRASH_RULE, {"name": "uploads", "abort_incomplete_multipart_days": 7}]}})
    assert config.desired(BUCKET) == [
        {
            "ID": "glacier-pipelines:lab:trash",
            "Filter": {"Prefix": "archive/lab/trash/"},
            "Status": "Enabled",
            "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}, {"Days": 180, "StorageClass": "DEEP_ARCHIVE"}],
            "Expiration": {"Days": 3650},
        },
        {
            "ID": "glacier-pipelines:lab:uploads",
            "Filter": {"Prefix": "archive/lab/"},
            "Status": "Enabled",
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        },
    ]
    tenant = config.tenant("lab")
    assert tenant.trash_key_prefix == "archive/lab/trash/"
    assert config.tenant("other").rules == () and config.tenant("other").own_prefix == "archive/other/"
    assert config.buckets() == [BUCKET]


def test_toml_and_json_files_load_alike(tmp_path):
    toml = tmp_path / "lifecycle.toml"
    toml.write_text("""
[tenants.lab]
sources = ["s3://uploads/lab/"]
trash_prefix = "bin"

[[tenants.lab.rules]]
name = "trash"
prefix = "bin/"
transitions = [{days = 30, storage_class = "GLACIER"}, {days = 180, storage_class = "deep_archive"}]
abort_incomplete_multipart_days = 7

[[tenants.lab.rules]]
name = "app-uploads"
prefix = "s3://uploads/lab/old/"
transitions = [{days = 0, storage_class = "GLACIER_IR"}]
""")
    js = tmp_path / "lifecycle.json"
    js.write_text(
        json.dumps(
            {
                "tenants": {
                    "lab": {
                        "sources": ["s3://uploads/lab/"],
                        "trash_prefix": "bin",
                        "rules": [
                            {
                                "name": "trash",
                                "prefix": "bin/",
                                "transitions": [{"days": 30, "storage_class": "GLACIER"}, {"days": 180, "storage_class": "DEEP_ARCHIVE"}],
                                "abort_incomplete_multipart_days": 7,
                            },
                            {
                                "name": "app-uploads",
                                "prefix": "s3://uploads/lab/old/",
                                "transitions": [{"days": 0, "storage_class": "GLACIER_IR"}],
                            },
                        ],
                    }
                }
            }
        )
    )
    a = lc.load_config(toml, bucket=BUCKET, key_prefix="archive")
    b = lc.load_config(js, bucket=BUCKET, key_prefix="archive")
    assert a == b
    assert a.tenant("lab").trash_prefix == "bin/"
    assert a.buckets() == [BUCKET, "uploads"]
    assert a.desired("uploads") == [
        {
            "ID": "glacier-pipelines:lab:app-uploads",
            "Filter": {"Prefix": "lab/old/"},
            "Status": "Enabled",
            "Transitions": [{"Days": 0, "StorageClass": "GLACIER_IR"}],
        }
    ]
    assert a.tenant("lab").sources == (lc.Source("uploads", "lab/"),)


def test_no_file_means_nothing_is_declared():
    config = lc.load_config(None, bucket=BUCKET, key_prefix="archive")
    assert not config.declared and config.rules() == []


@pytest.mark.parametrize(
    "tenants, expected",
    [
        ({"Lab": {}}, "tenants.Lab: tenant 'Lab' is not valid"),
        ({"lab": {"rules": [{"name": "x", "prefix": "/abs", "expiration_days": 5}]}}, "must be relative to the tenant's prefix"),
        ({"lab": {"rules": [{"name": "x", "prefix": "a/../b", "expiration_days": 5}]}}, "must not contain '..' segments"),
        ({"lab": {"rules": [{"name": "x", "prefix": "a*b", "expiration_days": 5}]}}, "characters that are not used in keys"),
        ({"lab": {"rules": [{"name": "bad name", "expiration_days": 5}]}}, "rules[0].name: 'bad name' must be"),
        ({"lab": {"rules": [{"name": "x"}]}}, "a rule needs at least one of"),
        ({"lab": {"rules": [{"name": "x", "expiration_days": 0}]}}, "expiration_days: must be at least 1"),
        ({"lab": {"rules": [{"name": "x", "expiration_days": "30"}]}}, "must be a whole number of days"),
        ({"lab": {"rules": [{"name": "x", "transitions": [{"days": 10, "storage_class": "STANDARD_IA"}]}]}}, "is not one of GLACIER_IR"),
        (
            {
                "lab": {
                    "rules": [
                        {
                            "name": "x",
                            "transitions": [{"days": 30, "storage_class": "DEEP_ARCHIVE"}, {"days": 200, "storage_class": "GLACIER"}],
                        }
                    ]
                }
            },
            "S3 only moves objects down",
        ),
        (
            {
                "lab": {
                    "rules": [
                        {
                            "name": "x",
                            "transitions": [{"days": 30, "storage_class": "GLACIER"}, {"days": 60, "storage_class": "DEEP_ARCHIVE"}],
                        }
                    ]
                }
            },
            "must stay 90 days in GLACIER",
        ),
        (
            {"lab": {"rules": [{"name": "x", "transitions": [{"days": 30, "storage_class": "GLACIER"}], "expiration_days": 30}]}},
            "must be more than the last transition's 30 days",
        ),
        ({"lab": {"rules": [{"name": "x", "expiration_days": 5}, {"name": "x", "expiration_days": 6}]}}, "'x' is used twice"),
        ({"lab": {"rules": [{"name": "x", "expiration_days": 5, "expire": 3}]}}, "unknown field 'expire'"),
        ({"lab": {"sources": ["https://example.org/x"]}}, "is not an s3://bucket/prefix URL"),
        ({"lab": {"sources": ["s3://archive-test/archive/"]}}, "reaches into the archive prefix of other tenants"),
        ({"lab": {"sources": ["s3://uploads/"]}, "museum": {"sources": ["s3://uploads/museum/"]}}, "overlap"),
        ({"lab": {"rules": [{"name": "x", "prefix": "s3://uploads/lab/", "expiration_days": 5}]}}, "is outside tenant lab's prefix"),
        (
            {"lab": {"rules": [{"name": "x", "prefix": "s3://archive-test/archive/museum/", "expiration_days": 5}]}},
            "is outside tenant lab's",
        ),
        ({"lab": {"trash_prefix": ""}}, "trash_prefix: must not be empty"),
    ],
)
def test_refusals_are_clear_messages_not_tracebacks(tenants, expected):
    found = problems(tenants)
    assert any(expected in p for p in found), found


def test_every_problem_is_reported_at_once():
    found = problems({"lab": {"rules": [{"name": "a"}, {"name": "b", "expiration_days": -1}], "bogus": 1}})
    assert len(found) == 3, found


def test_a_file_that_is_not_toml_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[tenants.lab\n")
    with pytest.raises(lc.LifecycleConfigError, match=r"bad.toml: not valid TOML"):
        lc.load_config(path, bucket=BUCKET, key_prefix="archive")
    with pytest.raises(lc.LifecycleConfigError, match="cannot read it"):
        lc.load_config(tmp_path / "missing.toml", bucket=BUCKET, key_prefix="archive")


FOREIGN = {"ID": "logs-expiry", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 30}}
LEGACY = {"ID": "old-tool", "Prefix": "tmp/", "Status": "Enabled", "Expiration": {"Date": datetime(2030, 1, 1, tzinfo=timezone.utc)}}


def test_merge_adds_then_settles():
    desired = parse({"lab": {"rules": [TRASH_RULE]}}).desired(BUCKET)
    plan = lc.merge(BUCKET, [], desired)
    assert plan.added == ["glacier-pipelines:lab:trash"] and plan.has_changes
    assert plan.rules == desired
    again = lc.merge(BUCKET, plan.rules, desired)
    assert not again.has_changes and again.unchanged == ["glacier-pipelines:lab:trash"]


def test_merge_keeps_foreign_rules_as_they_are_and_in_place():
    desired = parse({"lab": {"rules": [TRASH_RULE]}}).desired(BUCKET)
    plan = lc.merge(BUCKET, [FOREIGN, LEGACY], desired)
    assert plan.rules[:2] == [FOREIGN, LEGACY]
    assert plan.foreign == ["logs-expiry", "old-tool"] and plan.added == ["glacier-pipelines:lab:trash"]
    assert plan.counts() == {"added": 1, "changed": 0, "removed": 0, "unchanged": 0, "foreign_kept": 2}
    # Even with nothing declared, foreign rules stay.
    assert lc.merge(BUCKET, [FOREIGN], []).rules == [FOREIGN]


def test_merge_changes_and_removes_only_project_rules():
    old = parse({"lab": {"rules": [TRASH_RULE, {"name": "gone", "expiration_days": 9}]}}).desired(BUCKET)
    new_trash = dict(TRASH_RULE, expiration_days=4000)
    museum = {"rules": [{"name": "mpu", "abort_incomplete_multipart_days": 3}]}
    desired = parse({"lab": {"rules": [new_trash]}, "museum": museum}).desired(BUCKET)
    plan = lc.merge(BUCKET, [FOREIGN, *old], desired)
    assert plan.changed == ["glacier-pipelines:lab:trash"]
    assert plan.removed == ["glacier-pipelines:lab:gone"]
    assert plan.added == ["glacier-pipelines:museum:mpu"]
    assert plan.foreign == ["logs-expiry"]
    assert [r["ID"] for r in plan.rules] == ["logs-expiry", "glacier-pipelines:lab:trash", "glacier-pipelines:museum:mpu"]
    assert "expire after 3650 d → " in plan.details["glacier-pipelines:lab:trash"] and "4000" in plan.details["glacier-pipelines:lab:trash"]
    table = lc.markdown([plan])
    assert "| archive-test | `glacier-pipelines:lab:gone` | removed |" in table
    assert "| archive-test | `logs-expiry` | kept (not ours) |" in table


def test_canonical_form_ignores_what_s3_reshuffles():
    ours = parse({"lab": {"rules": [TRASH_RULE]}}).desired(BUCKET)[0]
    as_returned = {
        "Expiration": {"Days": 3650},
        "ID": ours["ID"],
        "Prefix": "archive/lab/trash/",
        "Status": "Enabled",
        "Transitions": list(reversed(ours["Transitions"])),
        "NoncurrentVersionTransitions": [],
    }
    assert lc.canonical(as_returned) == lc.canonical(ours)
    assert lc.describe(ours) == "archive/lab/trash/: GLACIER after 30 d; DEEP_ARCHIVE after 180 d; expire after 3650 d"


def test_an_empty_key_prefix_still_scopes_rules_to_the_tenant():
    config = parse({"lab": {"rules": [TRASH_RULE]}}, key_prefix="")
    assert config.desired(BUCKET)[0]["Filter"] == {"Prefix": "lab/trash/"}
    assert problems({"lab": {"sources": [f"s3://{BUCKET}/elsewhere/"]}}, key_prefix="")
