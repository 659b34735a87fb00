"""``process`` with a run queue: the planned runs go on the instance's queue, tagged like the sensors' (no daemon here)."""

from __future__ import annotations

import json
import time
from collections import Counter

import dagster as dg
import pytest

from glacier_pipelines import cli

QUEUE_CONFIG = "telemetry:\n  enabled: false\n"  # Dagster 1.13's default coordinator queues runs
LIFECYCLE = (
    dg.DagsterEventType.RUN_ENQUEUED,
    dg.DagsterEventType.RUN_STARTING,
    dg.DagsterEventType.RUN_START,
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
)
NO_QUEUE_CONFIG = QUEUE_CONFIG + ("run_coordinator:\n  module: dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n")


@pytest.fixture
def env(archive, tmp_path, monkeypatch):
    home = tmp_path / "dagster-home"
    home.mkdir()
    (home / "dagster.yaml").write_text(QUEUE_CONFIG)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return archive


def _submit(archive, tenant: str, n: int) -> None:
    archive.submit(
        *[archive.request(tenant, archive.file(f"{tenant}{i}", b"%d" % i), b"%d" % i, requestId=f"{tenant}-{i}") for i in range(n)]
    )


def _queued(instance) -> list:
    return instance.get_runs(filters=dg.RunsFilter(job_name="archive_job", statuses=[dg.DagsterRunStatus.QUEUED]))


def test_submit_queues_the_planned_runs_with_the_sensors_tags_and_neither_plans_them_again(env, capsys):
    from glacier_pipelines.defs.intake.sensors import request_intake_sensor

    _submit(env, "lab", 2)
    _submit(env, "museum", 1)
    assert cli.main(["process", "--submit", "--no-wait", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["mode"] == "submit"
    assert sorted((r["tenant"], r["status"]) for r in summary["runs"]) == [("lab", "QUEUED"), ("museum", "QUEUED")]
    assert summary["statuses"] == {"PENDING": 3}  # nothing ran here: the daemon would launch them

    with dg.DagsterInstance.get() as instance:
        runs = {run.tags["dagster/partition"]: run for run in _queued(instance)}
        assert set(runs) == {"lab", "museum"}
        for tenant, run in runs.items():
            assert run.tags["glacier/tenant"] == tenant and run.tags["glacier/slot"] == "0"
            assert run.tags["dagster/run_key"] == run.tags["glacier/plan-key"] and run.tags["glacier/plan-key"].startswith(f"{tenant}:")
            # launchable by the daemon: it finds the code location by this name in its workspace
            assert run.remote_job_origin.location_name == "glacier_pipelines"
            lifecycle = [e.dagster_event_type for e in instance.all_logs(run.run_id) if e.dagster_event_type in LIFECYCLE]
            assert lifecycle == [dg.DagsterEventType.RUN_ENQUEUED], "queued, not started here"
        assert set(instance.get_dynamic_partitions("tenants")) == {"lab", "museum"}

        # The sensor's next tick plans nothing for batches already on the queue, and neither does another pass.
        tick = request_intake_sensor(dg.build_sensor_context(instance=instance, resources=env.defs().resources))
        assert tick.run_requests == []
    assert cli.main(["process", "--submit", "--no-wait", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"] == []
    with dg.DagsterInstance.get() as instance:
        assert len(_queued(instance)) == 2


def test_by_default_process_queues_only_when_a_daemon_dequeues_and_runs_in_process_otherwise(env, capsys):
    from dagster._daemon.types import DaemonHeartbeat

    _submit(env, "lab", 1)
    with dg.DagsterInstance.get() as instance:
        instance.add_daemon_heartbeat(
            DaemonHeartbeat(timestamp=time.time(), daemon_type="QUEUED_RUN_COORDINATOR", daemon_id="a-daemon", errors=[])
        )
    assert cli.main(["process", "--no-wait", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "submit"
    with dg.DagsterInstance.get() as instance:
        assert len(_queued(instance)) == 1

    # --in-process overrides: the queued run is in flight, so this pass starts nothing for its batch ...
    assert cli.main(["process", "--in-process", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["mode"], summary["runs"], summary["statuses"]) == ("in-process", [], {"PENDING": 1})


def test_submit_on_an_instance_that_launches_at_once_is_refused_with_exit_2_before_anything_is_touched(env, capsys):
    import os
    from pathlib import Path

    from glacier_pipelines.core.transport import submission_to_message

    (Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml").write_text(NO_QUEUE_CONFIG)
    data = b"stays pending"
    env.transport().publish_request(*submission_to_message(env.request("lab", env.file("a", data), data, requestId="a")))
    assert cli.main(["process", "--submit"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--submit needs a Dagster instance that queues runs" in line and "no request was touched" in line
    assert env.catalog().status_counts() == {} and env.transport().requests.count("new") == 1  # not even drained
    with dg.DagsterInstance.get() as instance:
        assert instance.get_dynamic_partitions("tenants") == []


def test_process_plans_a_tenants_parallel_runs_like_the_sensors_and_refuses_a_wait_of_nothing(env, monkeypatch, capsys):
    monkeypatch.setenv("GLACIER_TENANT_RUNS", "1,lab=2")
    monkeypatch.setenv("GLACIER_BATCH_SIZE", "1")
    _submit(env, "lab", 3)
    _submit(env, "museum", 3)
    assert cli.main(["process", "--submit", "--no-wait", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert Counter(r["tenant"] for r in runs) == {"lab": 2, "museum": 1}  # lab's limit is 2; museum's the default 1
    with dg.DagsterInstance.get() as instance:
        assert sorted(r.tags["glacier/slot"] for r in _queued(instance) if r.tags["glacier/tenant"] == "lab") == ["0", "1"]
    assert cli.main(["process", "--wait-minutes", "0"]) == 2
    assert "--wait-minutes 0.0: give a number of minutes above 0" in capsys.readouterr().err
