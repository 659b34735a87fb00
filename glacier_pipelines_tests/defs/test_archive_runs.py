"""One planner for archive runs in the instance (defs/intake/runs.py): plan keys, runs in flight, attempts; sensors and CLI agree."""

from __future__ import annotations

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRun

from glacier_pipelines.defs.intake.runs import MAX_ATTEMPTS, PLAN_KEY_TAG, planned_runs


def _submit(archive, tenant: str, n: int) -> None:
    data = [b"%s %d" % (tenant.encode(), i) for i in range(n)]
    archive.submit(*[archive.request(tenant, archive.file(f"{tenant}-{i}", d), d, requestId=f"{tenant}-{i}") for i, d in enumerate(data)])


def _add(instance, run_id: str, status: dg.DagsterRunStatus, tags: dict[str, str]) -> DagsterRun:
    return instance.add_run(DagsterRun(job_name="archive_job", run_id=run_id, status=status, tags=tags))


def _sensor_tick(archive, instance):
    from glacier_pipelines.defs.intake.sensors import request_intake_sensor

    context = dg.build_sensor_context(instance=instance, resources=archive.defs().resources)
    return request_intake_sensor(context)


def test_a_plan_in_flight_is_not_planned_again_and_a_finished_one_gets_a_new_key(archive, instance):
    _submit(archive, "lab", 2)
    catalog = archive.catalog()
    [run] = planned_runs(instance, catalog, batch_size=10)
    assert run.tenant == "lab" and run.run_key == run.plan_key
    assert run.all_tags() == {
        "glacier/tenant": "lab",
        "glacier/slot": "0",
        PLAN_KEY_TAG: run.plan_key,
        "dagster/partition": "lab",
        "dagster/run_key": run.plan_key,
    }

    _add(instance, "started-1", dg.DagsterRunStatus.STARTED, run.all_tags())
    assert planned_runs(instance, catalog, batch_size=10) == [], "a running run of the same plan is not planned twice"

    instance.report_run_failed(instance.get_run_by_id("started-1"))  # it ended and left the catalog as it was
    [retry] = planned_runs(instance, catalog, batch_size=10)
    assert retry.plan_key == run.plan_key and retry.run_key == f"{run.plan_key}#2"

    for n in range(2, MAX_ATTEMPTS + 1):
        _add(instance, f"failed-{n}", dg.DagsterRunStatus.FAILURE, {**run.all_tags(), "dagster/run_key": f"{run.plan_key}#{n}"})
    assert planned_runs(instance, catalog, batch_size=10) == [], "a sensor stops after MAX_ATTEMPTS runs of one state"
    [again] = planned_runs(instance, catalog, batch_size=10, max_attempts=None)  # process: asked again by someone
    assert again.run_key == f"{run.plan_key}#{MAX_ATTEMPTS + 1}"

    _submit(archive, "lab", 3)  # new work changes the catalog's state: a new plan, under its own key
    [fresh] = planned_runs(instance, catalog, batch_size=10)
    assert fresh.plan_key != run.plan_key and fresh.run_key == fresh.plan_key


def test_the_sensor_plans_nothing_for_a_batch_the_cli_queued_and_the_cli_nothing_for_the_sensors(archive, instance):
    _submit(archive, "lab", 1)
    _submit(archive, "museum", 1)
    catalog = archive.catalog()
    by_tenant = {r.tenant: r for r in planned_runs(instance, catalog, batch_size=10, max_attempts=None)}

    # `process` is executing lab's run (the tags it gives: test_process_submit.py checks a queued one), the sensor daemon
    # launched museum's (a RunRequest's tags and its own).
    _add(instance, "cli-lab", dg.DagsterRunStatus.STARTED, by_tenant["lab"].all_tags())
    _add(
        instance,
        "sensor-museum",
        dg.DagsterRunStatus.STARTED,
        {**by_tenant["museum"].all_tags(), "dagster/sensor_name": "request_intake_sensor"},
    )

    tick = _sensor_tick(archive, instance)
    assert tick.run_requests == []
    assert planned_runs(instance, catalog, batch_size=10, max_attempts=None) == []

    # Once lab's run ended without touching the catalog, both plan the same retry under the same key.
    instance.report_run_failed(instance.get_run_by_id("cli-lab"))
    [request] = _sensor_tick(archive, instance).run_requests
    [cli] = planned_runs(instance, catalog, batch_size=10, max_attempts=None)
    assert (request.partition_key, request.run_key, request.tags) == (cli.tenant, cli.run_key, cli.tags)


def test_a_failed_run_that_dagster_will_retry_is_not_over_until_its_newest_retry_ended(archive, instance):
    from dagster._core.storage.tags import PARENT_RUN_ID_TAG, ROOT_RUN_ID_TAG, WILL_RETRY_TAG

    from glacier_pipelines.defs.intake.runs import run_finished

    _submit(archive, "lab", 1)
    catalog = archive.catalog()
    [run] = planned_runs(instance, catalog, batch_size=10)
    finished = run_finished(instance)
    _add(instance, "root", dg.DagsterRunStatus.FAILURE, {**run.all_tags(), WILL_RETRY_TAG: "true"})  # its worker died, run_retries on
    assert not finished("root") and planned_runs(instance, catalog, batch_size=10) == [], "its retry continues the batch"

    retry = {**run.all_tags(), ROOT_RUN_ID_TAG: "root", PARENT_RUN_ID_TAG: "root"}
    _add(instance, "retry-1", dg.DagsterRunStatus.STARTED, retry)
    assert not finished("root") and planned_runs(instance, catalog, batch_size=10) == []
    instance.report_run_failed(instance.get_run_by_id("retry-1"))
    instance.add_run_tags("retry-1", {WILL_RETRY_TAG: "false"})  # out of retries
    assert finished("root") and finished("unknown-run")
    [after] = planned_runs(instance, catalog, batch_size=10)
    assert after.run_key == f"{run.plan_key}#3"
