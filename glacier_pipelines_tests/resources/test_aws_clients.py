"""Every AWS client comes from a dagster-aws resource built from the environment, with the botocore settings of before."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest
from dagster_aws.s3 import S3Resource
from dagster_aws.utils import ResourceWithBoto3Configuration


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in [n for n in os.environ if n.startswith("GLACIER_")] + [
        "DAGSTER_HOME",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "HTTP_PROXY",
        "http_proxy",
    ]:
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "GLACIER_HOME": str(tmp_path / "home"),
        "GLACIER_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "GLACIER_S3_REGION": "eu-west-3",
        "GLACIER_UPLOAD_CONCURRENCY": "12",
        "GLACIER_SQS_ENDPOINT_URL": "http://127.0.0.1:9002",
        "GLACIER_VAULT_ENDPOINT_URL": "http://127.0.0.1:9001",
        "GLACIER_VAULT_REGION": "eu-central-1",
        "GLACIER_VAULT_CONCURRENCY": "9",
    }.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def _resources():
    from glacier_pipelines.resources import resources_from_env

    return resources_from_env()


def test_archive_store_is_a_dagster_aws_s3_resource_configured_with_env_vars(aws_env):
    store = _resources()["archive_store"]
    assert isinstance(store, S3Resource)
    assert (store.region_name, store.endpoint_url) == (dg.EnvVar("GLACIER_S3_REGION"), dg.EnvVar("GLACIER_S3_ENDPOINT_URL"))
    assert isinstance(store.region_name, dg.EnvVar) and isinstance(store.endpoint_url, dg.EnvVar)
    client = store.client()
    assert (client.meta.endpoint_url, client.meta.region_name) == ("http://127.0.0.1:9000", "eu-west-3")
    config = client.meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 9}  # 8 retries, as before
    assert (config.max_pool_connections, config.connect_timeout, config.read_timeout) == (24, 10, 120)  # pool: 2 x part concurrency
    assert config.s3 == {"payload_signing_enabled": False}


def test_env_vars_are_resolved_inside_a_run(aws_env):
    seen = {}

    @dg.asset
    def probe(archive_store: S3Resource) -> None:
        client = archive_store.get_client()
        seen.update(endpoint=client.meta.endpoint_url, region=client.meta.region_name, field=archive_store.region_name)

    assert dg.materialize([probe], resources={"archive_store": _resources()["archive_store"]}).success
    assert seen == {"endpoint": "http://127.0.0.1:9000", "region": "eu-west-3", "field": "eu-west-3"}


def test_vault_clients_keep_their_endpoint_region_pool_and_timeouts(aws_env):
    from glacier_pipelines.resources.vault import s3_client

    r = _resources()
    vault = r["vault"]
    assert isinstance(vault, ResourceWithBoto3Configuration) and vault.endpoint_url == dg.EnvVar("GLACIER_VAULT_ENDPOINT_URL")
    glacier = vault.glacier()
    assert (glacier.meta.service_model.service_name, glacier.meta.endpoint_url, glacier.meta.region_name) == (
        "glacier",
        "http://127.0.0.1:9001",
        "eu-central-1",
    )
    assert glacier.meta.config.retries == {"mode": "standard", "total_max_attempts": 9}
    assert (glacier.meta.config.read_timeout, glacier.meta.config.max_pool_connections, glacier.meta.config.proxies) == (300, 18, {})
    s3 = s3_client(r["archive_store"], vault.concurrency)
    assert (s3.meta.endpoint_url, s3.meta.region_name, s3.meta.config.max_pool_connections) == ("http://127.0.0.1:9000", "eu-west-3", 24)
    assert s3_client(r["archive_store"], 20).meta.config.max_pool_connections == 40  # the copy's concurrency, when larger


def test_restore_events_client_is_sqs_on_its_endpoint(aws_env):
    restore = _resources()["restore"]
    assert isinstance(restore, ResourceWithBoto3Configuration)
    sqs = restore.sqs()
    assert (sqs.meta.service_model.service_name, sqs.meta.endpoint_url, sqs.meta.region_name) == (
        "sqs",
        "http://127.0.0.1:9002",
        "eu-west-3",
    )
    assert sqs.meta.config.retries == {"mode": "standard", "total_max_attempts": 6}
    assert (sqs.meta.config.connect_timeout, sqs.meta.config.read_timeout) == (10, 30)


def test_unset_endpoint_means_aws_itself_with_plain_defaults(aws_env):
    for name in ("GLACIER_S3_ENDPOINT_URL", "GLACIER_S3_REGION", "GLACIER_VAULT_ENDPOINT_URL", "GLACIER_SQS_ENDPOINT_URL"):
        aws_env.delenv(name)
    r = _resources()
    assert (r["archive_store"].endpoint_url, r["archive_store"].region_name) == (None, "us-east-1")
    assert r["archive_store"].client().meta.endpoint_url == "https://s3.amazonaws.com"
    assert r["restore"].sqs().meta.endpoint_url == "https://sqs.us-east-1.amazonaws.com"
    assert r["vault"].glacier().meta.endpoint_url == "https://glacier.eu-central-1.amazonaws.com"


def test_aws_profile_reaches_every_client(aws_env, tmp_path):
    config = tmp_path / "aws-config"
    config.write_text("[profile archivist]\naws_access_key_id = AKIDARCHIVIST\naws_secret_access_key = secret\n")
    aws_env.setenv("AWS_CONFIG_FILE", str(config))
    aws_env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    aws_env.setenv("AWS_PROFILE", "archivist")
    aws_env.delenv("AWS_ACCESS_KEY_ID")
    aws_env.delenv("AWS_SECRET_ACCESS_KEY")
    r = _resources()
    assert r["archive_store"].profile_name == dg.EnvVar("AWS_PROFILE")
    for client in (r["archive_store"].client(), r["restore"].sqs(), r["vault"].glacier()):
        assert client._request_signer._credentials.access_key == "AKIDARCHIVIST"


def test_a_value_given_by_an_explicit_environ_is_passed_as_is(aws_env):
    from glacier_pipelines.resources import resources_from_env

    store = resources_from_env({"GLACIER_S3_ENDPOINT_URL": "http://127.0.0.1:9100", "GLACIER_S3_REGION": "ap-south-1"})["archive_store"]
    assert (store.endpoint_url, store.region_name) == ("http://127.0.0.1:9100", "ap-south-1")  # not EnvVars the run would read elsewhere
    assert not isinstance(store.endpoint_url, dg.EnvVar)
    assert store.client().meta.endpoint_url == "http://127.0.0.1:9100"
