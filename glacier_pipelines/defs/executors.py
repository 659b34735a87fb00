"""The executor of every job, chosen by GLACIER_EXECUTOR: Dagster's own, or Kubernetes / Celery to spread steps over machines.

We write no worker pool of our own: the scale-out executors are dagster-k8s' and dagster-celery's,
installed with the optional `deploy` extra and imported only when selected. Their settings come
from a run-config file (GLACIER_EXECUTOR_CONFIG, e.g. deploy/executors/k8s_job_executor.yaml), so
runs started by sensors and schedules get them too.
"""

from pathlib import Path

import dagster as dg
import yaml

from glacier_pipelines.settings import env

EXECUTORS = ("multiprocess", "in_process", "k8s", "celery")


def _named(name: str) -> dg.ExecutorDefinition | None:
    if name == "multiprocess":
        return None  # Dagster's default (multiprocess for launched runs, in-process for execute_in_process)
    if name == "in_process":
        return dg.in_process_executor
    if name == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    if name == "celery":
        from dagster_celery import celery_executor

        return celery_executor
    raise ValueError(f"GLACIER_EXECUTOR={name!r}: expected one of {', '.join(EXECUTORS)}")


def executor_from_env() -> dg.ExecutorDefinition | None:
    executor = _named(env("GLACIER_EXECUTOR").strip().lower())
    path = env("GLACIER_EXECUTOR_CONFIG")
    if not path:
        return executor
    if executor is None:
        raise ValueError("GLACIER_EXECUTOR_CONFIG needs GLACIER_EXECUTOR set to the executor it configures")
    run_config = yaml.safe_load(Path(path).read_text())
    return executor.configured(run_config["execution"]["config"], name=executor.name)
