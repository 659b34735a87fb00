"""GLACIER_TENANTS_CONFIG: per-tenant settings from a TOML file, validated at once, falling back to today's variables."""

from __future__ import annotations

import pytest

from glacier_pipelines.core import keys
from glacier_pipelines.core.tenants import TenantsConfigError, load_tenants_config, parse_tenants_config

ENV = {
    "GLACIER_BUCKET": "env-bucket",
    "GLACIER_KEY_PREFIX": "archive",
    "GLACIER_STORAGE_CLASS": "GLACIER",
    "GLACIER_PACKAGE_THRESHOLD_BYTES": "4096",
}

GOOD = """
[defaults]
restore_days = 10

[tenants.lab]
bucket = "lab-archive"
key_prefix = "/labs/"
storage_class = "DEEP_ARCHIVE"
restore_tier = "standard"
sse = "aws:kms"
sse_kms_key_id = "arn:aws:kms:eu-west-1:111122223333:key/abc"
small_file_threshold_bytes = 65536

[tenants.museum]
restore_days = 30
"""


def test_a_tenant_table_overrides_defaults_which_override_the_environment(tmp_path):
    path = tmp_path / "tenants.toml"
    path.write_text(GOOD)
    config = load_tenants_config(path, environ=ENV)
    lab, museum, other = config.for_tenant("lab"), config.for_tenant("museum"), config.for_tenant("anyone")
    assert config.names == ("lab", "museum") and config.source == str(path)
    assert (lab.bucket, lab.key_prefix, lab.storage_class, lab.restore_tier) == ("lab-archive", "labs", "DEEP_ARCHIVE", "Standard")
    assert (lab.sse, lab.small_file_threshold_bytes, lab.restore_days, lab.compact_deleted_share) == ("aws:kms", 65536, 10, 0.5)
    assert (museum.bucket, museum.storage_class, museum.restore_days, museum.small_file_threshold_bytes) == (
        "env-bucket",
        "GLACIER",
        30,
        4096,
    )
    assert other == config.defaults and other.restore_days == 10 and other.bucket == "env-bucket"


def test_without_a_file_every_tenant_gets_todays_variables():
    config = load_tenants_config(environ=ENV)
    assert config.tenants == {} and config.source is None
    assert (config.for_tenant("lab").bucket, config.for_tenant("lab").storage_class) == ("env-bucket", "GLACIER")
    assert load_tenants_config(environ={"GLACIER_TENANTS_CONFIG": "", **ENV}).tenants == {}


def test_the_environment_variable_names_the_file(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('[tenants.lab]\nbucket = "from-file"\n')
    assert load_tenants_config(environ={"GLACIER_TENANTS_CONFIG": str(path)}).for_tenant("lab").bucket == "from-file"


def test_every_problem_is_named_with_its_table_and_field():
    data = {
        "tenants": {
            "lab": {"bucket": "Bad_Bucket", "storage_class": "ONEZONE", "restore_days": 0, "colour": "red"},
            "Bad Name": {"bucket": "fine-bucket"},
            "deep": {"storage_class": "DEEP_ARCHIVE", "restore_tier": "Expedited"},
            "kms": {"sse_kms_key_id": "k"},
            "sneaky": {"key_prefix": "a/../b"},
            "share": {"compact_deleted_share": 1.5},
        },
        "extras": {},
    }
    with pytest.raises(TenantsConfigError) as err:
        parse_tenants_config(data, environ=ENV, source="t.toml")
    message = str(err.value)
    for expected in (
        "t.toml: [extras]: unknown table",
        "[tenants.lab].bucket: must be an S3 bucket name",
        "[tenants.lab].storage_class",
        "[tenants.lab].restore_days",
        "[tenants.lab].colour: unknown field",
        "[tenants.Bad Name]: not a valid tenant name",
        "Expedited is not available for DEEP_ARCHIVE",
        "sse_kms_key_id is set but sse is not aws:kms",
        "[tenants.sneaky].key_prefix",
        "[tenants.share].compact_deleted_share",
    ):
        assert expected in message, (expected, message)


def test_credentials_are_refused_without_echoing_them():
    with pytest.raises(TenantsConfigError) as err:
        parse_tenants_config({"tenants": {"lab": {"aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG"}}}, environ=ENV)
    assert "credentials do not belong in this file" in str(err.value)
    assert "wJalrXUtnFEMI" not in str(err.value)


@pytest.mark.parametrize("text, expected", [("[tenants.lab\nbucket=1", "is not valid TOML"), (None, "does not exist")])
def test_unreadable_files_say_so(tmp_path, text, expected):
    path = tmp_path / "t.toml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(TenantsConfigError, match=expected):
        load_tenants_config(path, environ=ENV)


def test_tenant_names_are_checked_on_lookup_too():
    with pytest.raises(keys.InvalidKey):
        load_tenants_config(environ=ENV).for_tenant("../etc")


def test_per_tenant_thresholds_of_the_environment_apply_where_the_file_sets_none_and_origins_name_the_setting(tmp_path):
    path = tmp_path / "tenants.toml"
    path.write_text('[tenants.lab]\nsmall_file_threshold_bytes = 100\n\n[tenants.museum]\nbucket = "museum-archive"\n')
    env = {**ENV, "GLACIER_PACKAGE_TENANT_THRESHOLDS": "lab=7,museum=9,other=11", "GLACIER_COMPACT_DELETED_SHARE": "0.25"}
    config = load_tenants_config(path, environ=env)
    assert [config.for_tenant(t).small_file_threshold_bytes for t in ("lab", "museum", "other", "anyone")] == [100, 9, 11, 4096]
    assert config.for_tenant("museum").compact_deleted_share == 0.25
    assert config.origin("museum", "bucket") == f"GLACIER_TENANTS_CONFIG {path} [tenants.museum] bucket"
    assert config.origin("lab", "bucket") == "GLACIER_BUCKET"
    assert config.origin("museum", "small_file_threshold_bytes") == "GLACIER_PACKAGE_TENANT_THRESHOLDS"
    assert config.placement("museum") == ("museum-archive", "archive/museum/", "GLACIER")


def test_a_table_choosing_sse_s3_does_not_inherit_the_environments_kms_key():
    env = {**ENV, "GLACIER_SSE": "aws:kms", "GLACIER_SSE_KMS_KEY_ID": "arn:aws:kms:us-east-1:111122223333:key/env"}
    config = parse_tenants_config({"tenants": {"lab": {"sse": "AES256"}, "museum": {}}}, environ=env)
    assert (config.for_tenant("lab").sse, config.for_tenant("lab").sse_kms_key_id) == ("AES256", None)
    assert config.for_tenant("museum").sse_kms_key_id.endswith("key/env")
    assert load_tenants_config(environ={**ENV, "GLACIER_SSE_KMS_KEY_ID": "k"}).defaults.sse_kms_key_id is None  # ignored without aws:kms
