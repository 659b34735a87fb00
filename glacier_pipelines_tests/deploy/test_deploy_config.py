"""deploy/: the production instance file loaded by Dagster itself on PostgreSQL, the executor run configs
validated against their executors' schemas, and the Helm values checked for structure and for
agreement with the instance file. What needs Helm or a cluster is not checked here (see the README)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from glacier_pipelines_tests.integration.conftest import postgres_url  # noqa: F401  (the fixture)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _instance_yaml() -> dict:
    return yaml.safe_load((DEPLOY / "dagster.yaml").read_text())


@pytest.mark.postgres
def test_production_instance_loads_with_dagsters_schema_on_postgresql(tmp_path, postgres_url, monkeypatch):  # noqa: F811
    import dagster as dg
    from dagster._core.definitions.run_request import InstigatorType
    from dagster._core.scheduler.instigation import TickStatus

    shutil.copy(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_PG_URL", postgres_url)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 4
        assert queue.tag_concurrency_limits == [{"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
        pools = instance.get_concurrency_config().pool_config
        assert (pools.default_pool_limit, pools.pool_granularity.value) == (2, "op")
        assert instance.run_monitoring_enabled and instance.run_monitoring_settings["start_timeout_seconds"] == 300
        assert (instance.run_monitoring_poll_interval_seconds, instance.run_monitoring_max_resume_run_attempts) == (30, 0)
        assert (instance.run_retries_enabled, instance.run_retries_max_retries) == (True, 2)
        assert instance.run_retries_retry_on_asset_or_op_failure is False
        assert instance.get_tick_retention_settings(InstigatorType.SENSOR)[TickStatus.SKIPPED] == 7
        assert instance.get_tick_retention_settings(InstigatorType.SCHEDULE)[TickStatus.SUCCESS] == 90
        assert not instance.telemetry_enabled
        instance.add_dynamic_partitions("tenants", ["lab"])  # the tables exist in the fresh database
        assert instance.get_dynamic_partitions("tenants") == ["lab"]


def test_production_instance_refuses_a_broken_file(tmp_path, monkeypatch):
    """The check above would notice a wrong key: Dagster's schema rejects it."""
    import dagster as dg
    from dagster._core.errors import DagsterInvalidConfigError

    config = _instance_yaml()
    config["concurrency"]["runs"]["tag_concurrency_limits"][0]["value"] = {"applyLimitPerUniqueValu": True}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql+psycopg2://nobody@127.0.0.1:1/none")
    with pytest.raises(DagsterInvalidConfigError):
        dg.DagsterInstance.from_config(str(tmp_path))


def test_workspace_points_at_a_separate_code_server():
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    server = workspace["load_from"][0]["grpc_server"]
    assert server["host"] == {"env": "DAGSTER_CODE_SERVER_HOST"} and server["port"] == {"env": "DAGSTER_CODE_SERVER_PORT"}
    assert server["location_name"] == "glacier_pipelines"


def test_no_op_retry_policy_multiplies_run_retries():
    """Run retries cover crashed workers only; assets keep their own RetryPolicy, so attempts add up instead of multiplying."""
    from glacier_pipelines.definitions import defs

    assert _instance_yaml()["run_retries"]["retry_on_asset_or_op_failure"] is False
    policies = {node.key.to_user_string(): node.assets_def.op.retry_policy for node in defs.resolve_asset_graph().asset_nodes}
    assert policies["glacier_objects"] is not None and policies["glacier_objects"].max_retries == 2


def test_assets_that_touch_shared_endpoints_are_in_pools():
    from glacier_pipelines.definitions import defs

    pools = {node.key.to_user_string(): node.pools for node in defs.resolve_asset_graph().asset_nodes}
    assert pools["glacier_objects"] == {"s3_uploads"} and pools["glacier_packages"] == {"s3_uploads"}
    assert pools["restore_requests"] == {"glacier_restores"}
    assert not pools["ingest_batch"]


def _within(expected, actual) -> bool:
    """Every value of `expected` is in `actual` (which also holds the schema's defaults)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and _within(v, actual[k]) for k, v in expected.items())
    return expected == actual


@pytest.mark.parametrize("executor, path", [("k8s", "k8s_job_executor.yaml"), ("celery", "celery_executor.yaml")])
def test_executor_run_config_is_valid_for_its_executor(executor, path, tmp_path, monkeypatch):
    import dagster as dg

    from glacier_pipelines.definitions import build_defs

    monkeypatch.setenv("GLACIER_EXECUTOR", executor)
    monkeypatch.setenv("GLACIER_EXECUTOR_CONFIG", str(DEPLOY / "executors" / path))
    monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    job = build_defs().resolve_job_def("archive_job")
    assert job.executor_def.name == executor
    run_config = yaml.safe_load((DEPLOY / "executors" / path).read_text())
    resolved = dg.validate_run_config(job, {})["execution"]  # what a sensor-launched run gets, with no run config of its own
    (effective,) = resolved.values()
    expected = run_config["execution"]["config"]
    if executor == "celery":
        expected = {**expected, "broker": "amqp://guest:guest@127.0.0.1:5672//"}  # env: resolved
    assert _within(expected, effective)

    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump({"execution": {"config": {**run_config["execution"]["config"], "no_such_option": 1}}}))
    monkeypatch.setenv("GLACIER_EXECUTOR_CONFIG", str(broken))
    with pytest.raises(dg.DagsterInvalidConfigError, match="no_such_option"):
        dg.validate_run_config(build_defs().resolve_job_def("archive_job"), {})


def test_unknown_executor_is_refused(monkeypatch):
    from glacier_pipelines.defs.executors import executor_from_env

    monkeypatch.setenv("GLACIER_EXECUTOR", "threads")
    with pytest.raises(ValueError, match="GLACIER_EXECUTOR"):
        executor_from_env()


# The chart's values schema as far as these values use it, read from the chart's values.schema.json and its
# instance templates (recent 1.x charts; top-level `concurrency` is rendered by helpers/instance/_concurrency.tpl):
# the keys each object may hold where the chart forbids others. Helm itself is not run here (not on this machine).
_CHART_KEYS = {
    (): {
        "global",
        "postgresql",
        "generatePostgresqlPasswordSecret",
        "dagster-user-deployments",
        "runLauncher",
        "dagsterDaemon",
        "concurrency",
        "retention",
        "telemetry",
        "dagsterWebserver",
        "computeLogManager",
        "scheduler",
        "pythonLogs",
        "ingress",
        "rabbitmq",
        "redis",
        "flower",
        "imagePullSecrets",
        "busybox",
        "migrate",
        "serviceAccount",
        "additionalInstanceConfig",
    },
    ("global",): {"postgresqlSecretName", "dagsterHome", "serviceAccountName", "celeryConfigSecretName"},
    ("postgresql",): {
        "image",
        "enabled",
        "postgresqlHost",
        "postgresqlUsername",
        "postgresqlPassword",
        "postgresqlDatabase",
        "postgresqlParams",
        "postgresqlScheme",
        "service",
    },
    ("runLauncher",): {"type", "config"},
    ("runLauncher", "config", "k8sRunLauncher"): {
        "image",
        "imagePullPolicy",
        "jobNamespace",
        "loadInclusterConfig",
        "kubeconfigFile",
        "envConfigMaps",
        "envSecrets",
        "envVars",
        "volumeMounts",
        "volumes",
        "labels",
        "failPodOnRunFailure",
        "resources",
        "schedulerName",
        "securityContext",
        "runK8sConfig",
    },
    ("runLauncher", "config", "k8sRunLauncher", "runK8sConfig"): {
        "containerConfig",
        "podSpecConfig",
        "podTemplateSpecMetadata",
        "jobSpecConfig",
        "jobMetadata",
    },
    ("dagsterDaemon", "runCoordinator"): {"enabled", "type", "config"},
    ("dagsterDaemon", "runCoordinator", "config", "queuedRunCoordinator"): {
        "maxConcurrentRuns",
        "tagConcurrencyLimits",
        "dequeueIntervalSeconds",
        "dequeueNumWorkers",
        "dequeueUseThreads",
        "blockOpConcurrencyLimitedRuns",
    },
    ("dagsterDaemon", "runRetries"): {"enabled", "maxRetries", "retryOnAssetOrOpFailure"},
    ("dagsterDaemon", "sensors"): {"useThreads", "numWorkers", "numSubmitWorkers"},
    ("dagsterDaemon", "schedules"): {"useThreads", "numWorkers", "numSubmitWorkers"},
    ("retention",): {"enabled", "sensor", "schedule", "autoMaterialize"},
    ("telemetry",): {"enabled"},
}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _snake_keys(value):
    if isinstance(value, dict):
        return {("applyLimitPerUniqueValue" if k == "applyLimitPerUniqueValue" else _snake(k)): _snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake_keys(v) for v in value]
    return value


def test_helm_values_use_the_charts_keys_and_say_what_deploy_dagster_yaml_says():
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    for path, allowed in _CHART_KEYS.items():
        node = values
        for part in path:
            node = node[part]
        assert set(node) <= allowed, (path, set(node) - allowed)

    assert values["postgresql"]["enabled"] is False and values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert {"name", "image", "port"} <= set(deployment)
    assert set(deployment["image"]) == {"repository", "tag", "pullPolicy"} and isinstance(deployment["image"]["tag"], str)
    assert deployment["codeServerArgs"] == ["--module-name", "glacier_pipelines.definitions"]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["GLACIER_SENSORS_RUNNING"] == "1"
    assert all(isinstance(s, dict) and set(s) == {"name"} for s in deployment["envSecrets"])

    # the same instance settings as deploy/dagster.yaml, which Dagster validated above
    instance = _instance_yaml()
    assert _snake_keys(values["concurrency"]) == instance["concurrency"]
    retries = {_snake(k): v for k, v in values["dagsterDaemon"]["runRetries"].items()}
    assert retries == instance["run_retries"]
    monitoring = {_snake(k): v for k, v in values["dagsterDaemon"]["runMonitoring"].items()}
    assert monitoring == instance["run_monitoring"]
    assert {_snake(k): v for k, v in values["dagsterDaemon"]["sensors"].items()} == instance["sensors"]
    assert {_snake(k): v for k, v in values["dagsterDaemon"]["schedules"].items()} == instance["schedules"]
    assert {k: {"purge_after_days": v["purgeAfterDays"]} for k, v in values["retention"].items() if k != "enabled"} == instance["retention"]
    assert values["telemetry"] == instance["telemetry"]
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queued["dequeueIntervalSeconds"] == instance["run_coordinator"]["config"]["dequeue_interval_seconds"]
