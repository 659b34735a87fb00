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
    return executor.configured(_execution_config(path), name=executor.name)


def _execution_config(path: str) -> dict:
    """The ``execution: config:`` mapping of the run-config file; any fault is a ValueError naming GLACIER_EXECUTOR_CONFIG."""
    where = f"GLACIER_EXECUTOR_CONFIG={path}"
    try:
        run_config = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{where}: cannot be read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ValueError(f"{where}: not valid YAML{at} ({getattr(exc, 'problem', None) or exc})") from None
    execution = run_config.get("execution") if isinstance(run_config, dict) else None
    config = execution.get("config") if isinstance(execution, dict) else None
    if not isinstance(config, dict):
        raise ValueError(f"{where}: expected a mapping 'execution: config: {{...}}' (see deploy/executors/)")
    return config
