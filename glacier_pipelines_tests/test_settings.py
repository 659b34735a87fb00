"""The settings model: typed values, defaults, and every refusal naming its variable and what it accepts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from glacier_pipelines import settings
from glacier_pipelines.core.constants import MiB
from glacier_pipelines.settings import ENV_VARS, GlacierSettings, Settings, SettingsError, env, load


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No GLACIER_* variable (nor DAGSTER_HOME) from the calling shell."""
    for name in [n for n in os.environ if n.startswith("GLACIER_")] + ["DAGSTER_HOME"]:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    "name, value, line",
    [
        ("GLACIER_BATCH_SIZE", "0", "GLACIER_BATCH_SIZE: expected a whole number >= 1, got '0'"),
        ("GLACIER_BATCH_SIZE", "abc", "GLACIER_BATCH_SIZE: expected a whole number >= 1, got 'abc'"),
        ("GLACIER_BATCH_SIZE", "2.5", "GLACIER_BATCH_SIZE: expected a whole number >= 1, got '2.5'"),
        ("GLACIER_PART_SIZE_MB", "-1", "GLACIER_PART_SIZE_MB: expected a number from 5 to 5120, got '-1'"),
        ("GLACIER_PART_SIZE_MB", "big", "GLACIER_PART_SIZE_MB: expected a number from 5 to 5120, got 'big'"),
        ("GLACIER_PACKAGE_TARGET_BYTES", "-4096", "GLACIER_PACKAGE_TARGET_BYTES: expected a whole number >= 1, got '-4096'"),
        ("GLACIER_VAULT_CHUNK_SIZE_MB", "sixty", "GLACIER_VAULT_CHUNK_SIZE_MB: expected a whole number from 1 to 4096, got 'sixty'"),
        (
            "GLACIER_STORAGE_CLASS",
            "REDUCED_REDUNDANCY",
            "GLACIER_STORAGE_CLASS: expected a storage class among DEEP_ARCHIVE, GLACIER, GLACIER_IR, STANDARD, got 'REDUCED_REDUNDANCY'",
        ),
        (
            "GLACIER_CATALOG_URL",
            "mysql://archivist:s3cret@db/catalog",
            "GLACIER_CATALOG_URL: expected a URL sqlite:///PATH or postgresql[+driver]://..., got a value starting mysql:// (rest not shown)",
        ),
        ("DAGSTER_HOME", "relative/dagster", "DAGSTER_HOME: expected an absolute folder path, got 'relative/dagster'"),
        (
            "GLACIER_S3_ENDPOINT_URL",
            "s3.example.com:9000",
            "GLACIER_S3_ENDPOINT_URL: expected an http:// or https:// URL, got 's3.example.com:9000'",
        ),
        (
            "GLACIER_AMQP_URL",
            "http://guest:guest@broker/",
            "GLACIER_AMQP_URL: expected an amqp:// or amqps:// URL, got a value starting http:// (rest not shown)",
        ),
        ("GLACIER_SMTP_STARTTLS", "maybe", "GLACIER_SMTP_STARTTLS: expected 0 or 1, got 'maybe'"),
        ("GLACIER_VAULT_TIER", "Fast", "GLACIER_VAULT_TIER: expected one of Bulk, Standard, Expedited, got 'Fast'"),
        (
            "GLACIER_SOURCE_ALLOWED_NETWORKS",
            "10.0.0.0/8,10.1.0.0/33",
            "GLACIER_SOURCE_ALLOWED_NETWORKS: expected comma-separated networks such as 10.0.0.0/8,127.0.0.1, got '10.0.0.0/8,10.1.0.0/33'",
        ),
        (
            "GLACIER_TENANT_RUNS",
            "1,lab=0",
            "GLACIER_TENANT_RUNS: expected N or N,tenant=N,... with each N a whole number >= 1, got '1,lab=0'",
        ),
        ("GLACIER_EXECUTOR", "threads", "GLACIER_EXECUTOR: expected one of multiprocess, in_process, k8s, celery, got 'threads'"),
    ],
)
def test_each_refused_value_names_the_variable_and_what_it_accepts(clean_env, name, value, line):
    with pytest.raises(SettingsError) as refused:
        load({name: value})
    assert refused.value.problems == [line]
    assert str(refused.value).splitlines()[1:] == [line]
    assert isinstance(refused.value, ValueError)
    assert "s3cret" not in str(refused.value) and "guest:guest" not in str(refused.value)  # secrets never echoed


def test_every_bad_variable_is_reported_at_once_one_per_line(clean_env):
    with pytest.raises(SettingsError) as refused:
        load({"GLACIER_BATCH_SIZE": "0", "GLACIER_UPLOAD_CONCURRENCY": "none", "GLACIER_STORAGE_CLASS": "cold", "GLACIER_BUCKET": "fine"})
    names = [p.split(":", 1)[0] for p in refused.value.problems]
    assert sorted(names) == ["GLACIER_BATCH_SIZE", "GLACIER_STORAGE_CLASS", "GLACIER_UPLOAD_CONCURRENCY"]
    assert "GLACIER_UPLOAD_CONCURRENCY: expected a whole number from 1 to 64, got 'none'" in refused.value.problems


def test_values_are_typed_and_normalized():
    m = load(
        {
            "GLACIER_BATCH_SIZE": "25",
            "GLACIER_PART_SIZE_MB": "8.5",
            "GLACIER_TENANTS": "lab, museum,,",
            "GLACIER_SOURCE_ROOTS": "/data/a:/data/b,/data/c",
            "GLACIER_STORAGE_CLASS": "glacier_ir",
            "GLACIER_SMTP_STARTTLS": "1",
            "GLACIER_PACKAGE_TENANT_THRESHOLDS": "lab=65536,museum=2097152",
            "GLACIER_SENSOR_INTERVAL_SECONDS": "5",
            "GLACIER_KEY_PREFIX": "/deep/archive/",
            "GLACIER_REQUEST_TRANSPORT": "AMQP",
            "GLACIER_VAULT_TIER": "expedited",
            "DAGSTER_HOME": "/srv/dagster",
        }
    )
    assert (m.batch_size, m.part_size_mb, m.tenants, m.source_roots) == (25, 8.5, ("lab", "museum"), ("/data/a", "/data/b", "/data/c"))
    assert (m.storage_class, m.smtp_starttls, m.sensor_interval_seconds, m.key_prefix) == ("GLACIER_IR", True, 5, "deep/archive")
    assert m.package_tenant_thresholds == (("lab", 65536), ("museum", 2097152))
    assert (m.request_transport, m.vault_tier, m.resolved_dagster_home) == ("amqp", "Expedited", Path("/srv/dagster"))


def test_unset_and_empty_variables_take_the_documented_defaults(clean_env):
    m = load({"GLACIER_BATCH_SIZE": "", "GLACIER_STORAGE_CLASS": ""})
    assert (m.batch_size, m.storage_class, m.s3_endpoint_url, m.tenants, m.dagster_home) == (500, "DEEP_ARCHIVE", None, (), None)
    assert m.resolved_dagster_home == Path(".glacier").resolve() / "dagster"  # a missing DAGSTER_HOME: under GLACIER_HOME
    for name, (default, _) in ENV_VARS.items():
        assert env(name, {}) == default, name


def test_the_old_views_read_the_model():
    environ = {
        "GLACIER_BATCH_SIZE": "7",
        "GLACIER_PART_SIZE_MB": "6",
        "GLACIER_TENANTS": "a,b",
        "GLACIER_HOME": "/tmp/gh",
        "GLACIER_SMTP_STARTTLS": "true",
    }
    s = Settings.from_env(environ)
    assert (s.batch_size, s.part_size, s.tenants, s.catalog_url) == (7, 6 * MiB, ("a", "b"), "sqlite:////tmp/gh/catalog.sqlite")
    assert (env("GLACIER_BATCH_SIZE", environ), env("GLACIER_PART_SIZE_MB", environ), env("GLACIER_SMTP_STARTTLS", environ)) == (
        "7",
        "6",
        "1",
    )
    with pytest.raises(SettingsError, match="GLACIER_BATCH_SIZE"):
        Settings.from_env({"GLACIER_BATCH_SIZE": "0"})
    with pytest.raises(SettingsError, match="GLACIER_BATCH_SIZE"):
        env("GLACIER_BUCKET", {"GLACIER_BATCH_SIZE": "0"})  # a view is never built over an invalid configuration


def test_the_model_reads_the_process_environment_and_ignores_other_variables(clean_env, monkeypatch):
    monkeypatch.setenv("GLACIER_BATCH_SIZE", "3")
    monkeypatch.setenv("GLACIER_TEST_POSTGRES_URL", "not a setting")  # test and CI switches share the prefix
    assert load().batch_size == 3 and GlacierSettings().batch_size == 3


def test_resources_from_env_refuses_at_load(clean_env, monkeypatch, tmp_path):
    from glacier_pipelines.resources import resources_from_env

    monkeypatch.setenv("GLACIER_HOME", str(tmp_path))
    monkeypatch.setenv("GLACIER_BATCH_SIZE", "0")
    with pytest.raises(SettingsError, match=r"GLACIER_BATCH_SIZE: expected a whole number >= 1, got '0'"):
        resources_from_env()
    monkeypatch.setenv("GLACIER_BATCH_SIZE", "5")
    assert resources_from_env()["request_transport"].batch_size == 5


def test_the_cli_refuses_before_running_anything(clean_env, monkeypatch, tmp_path, capsys):
    from glacier_pipelines import cli

    monkeypatch.setenv("GLACIER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GLACIER_UPLOAD_CONCURRENCY", "-2")
    monkeypatch.setenv("DAGSTER_HOME", "dagster")
    assert cli.main(["report"]) == 2
    err = capsys.readouterr().err
    assert "GLACIER_UPLOAD_CONCURRENCY: expected a whole number from 1 to 64, got '-2'" in err
    assert "DAGSTER_HOME: expected an absolute folder path, got 'dagster'" in err
    assert not (tmp_path / "home").exists()  # nothing ran: no catalog, no instance folder


def test_the_code_location_fails_to_load_with_the_message(tmp_path):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GLACIER_") and k != "DAGSTER_HOME"}
    environ.update(GLACIER_HOME=str(tmp_path), GLACIER_BATCH_SIZE="abc")
    done = subprocess.run(
        [sys.executable, "-c", "import glacier_pipelines.definitions"], env=environ, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert "SettingsError" in done.stderr
    assert "GLACIER_BATCH_SIZE: expected a whole number >= 1, got 'abc'" in done.stderr


def test_with_table_rewrites_a_stale_readme_table():
    stale = (
        "# x\n\n## Configuration\n\nIntro.\n\n| variable | default | meaning |\n|---|---|---|\n| `GLACIER_OLD` | `1` | gone |\n\nAfter.\n"
    )
    fresh = settings.with_table(stale)
    assert fresh.startswith("# x\n\n## Configuration\n\nIntro.\n\n| variable | default | accepts | meaning |")
    assert "GLACIER_OLD" not in fresh and fresh.endswith(settings.markdown_table() + "\nAfter.\n")
