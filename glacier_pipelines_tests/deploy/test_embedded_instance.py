"""The embedded default instance (top-level dagster.yaml): valid for Dagster, run monitoring on, and `process` runs in process."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_embedded_instance_loads_watches_runs_and_leaves_process_in_process_without_a_daemon(tmp_path, monkeypatch):
    import dagster as dg

    from glacier_pipelines.runs.process import _submits, daemon_alive, has_run_queue

    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.chdir(tmp_path)  # its storage folder is relative to where Dagster starts
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert instance.run_monitoring_enabled and instance.run_monitoring_max_resume_run_attempts == 0
        assert instance.run_monitoring_start_timeout_seconds == 180 and instance.run_monitoring_poll_interval_seconds == 30
        assert not instance.telemetry_enabled
        assert has_run_queue(instance) and not daemon_alive(instance)  # Dagster queues by default; nothing dequeues here
        assert _submits(instance, "auto", print) is False
    assert (tmp_path / ".glacier" / "dagster").is_dir()
