"""Sensors and schedules start by themselves only when asked (GLACIER_SENSORS_RUNNING=1) and configured, else say why."""

from __future__ import annotations

import importlib
import logging

import dagster as dg
import pytest

from glacier_pipelines.defs import status


@pytest.fixture
def clean_env(monkeypatch):
    for name in (
        "GLACIER_SENSORS_RUNNING",
        "GLACIER_REQUEST_TRANSPORT",
        "GLACIER_AMQP_URL",
        "GLACIER_BUCKET",
        "GLACIER_SENSOR_INTERVAL_SECONDS",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_unset_means_stopped(clean_env, caplog):
    with caplog.at_level(logging.INFO, logger="glacier_pipelines.automation"):
        assert status.sensor_status("s") == dg.DefaultSensorStatus.STOPPED
        assert status.schedule_status("t") == dg.DefaultScheduleStatus.STOPPED
    assert "s starts stopped: GLACIER_SENSORS_RUNNING is not 1" in caplog.text


def test_on_and_configured_means_running(clean_env):
    clean_env.setenv("GLACIER_SENSORS_RUNNING", "1")
    clean_env.setenv("GLACIER_BUCKET", "archive")
    assert status.sensor_status("s", status.unset("GLACIER_BUCKET")) == dg.DefaultSensorStatus.RUNNING
    assert status.schedule_status("t", status.unset("GLACIER_BUCKET")) == dg.DefaultScheduleStatus.RUNNING


def test_on_but_queue_missing_means_stopped_with_the_reason(clean_env, caplog):
    clean_env.setenv("GLACIER_SENSORS_RUNNING", "1")
    clean_env.setenv("GLACIER_REQUEST_TRANSPORT", "amqp")
    with caplog.at_level(logging.WARNING, logger="glacier_pipelines.automation"):
        got = status.sensor_status("amqp_bridge_sensor", status.transport_is("amqp") or status.unset("GLACIER_AMQP_URL"))
    assert got == dg.DefaultSensorStatus.STOPPED
    assert "amqp_bridge_sensor stays off although GLACIER_SENSORS_RUNNING=1: GLACIER_AMQP_URL is not set" in caplog.text


def test_a_default_does_not_count_as_configured(clean_env):
    assert status.unset("GLACIER_BUCKET") == "GLACIER_BUCKET is not set"  # settings.env would give 'glacier-archive'
    clean_env.setenv("GLACIER_BUCKET", "b")
    assert status.unset("GLACIER_BUCKET", "GLACIER_AMQP_URL") == "GLACIER_AMQP_URL is not set"
    assert status.unset("GLACIER_BUCKET") is None


def _reloaded_sensors():
    from glacier_pipelines.defs.intake import sensors as intake
    from glacier_pipelines.defs.restore import sensors as restore

    return importlib.reload(intake), importlib.reload(restore)


def test_default_status_of_the_real_sensors_follows_the_environment(clean_env, caplog):
    """default_status is fixed at import: reload the modules under each environment."""
    try:
        clean_env.setenv("GLACIER_SENSORS_RUNNING", "1")
        clean_env.setenv("GLACIER_REQUEST_TRANSPORT", "amqp")
        clean_env.setenv("GLACIER_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
        clean_env.setenv("GLACIER_BUCKET", "archive")
        clean_env.setenv("GLACIER_SENSOR_INTERVAL_SECONDS", "5")
        with caplog.at_level(logging.WARNING, logger="glacier_pipelines.automation"):
            intake, restore = _reloaded_sensors()
        assert intake.amqp_bridge_sensor.default_status == dg.DefaultSensorStatus.RUNNING
        assert intake.amqp_bridge_sensor.minimum_interval_seconds == 5
        assert intake.request_intake_sensor.default_status == dg.DefaultSensorStatus.STOPPED
        assert (
            "request_intake_sensor stays off although GLACIER_SENSORS_RUNNING=1: GLACIER_REQUEST_TRANSPORT is 'amqp', not 'embedded'"
            in caplog.text
        )
        assert restore.restore_completed_sensor.default_status == dg.DefaultSensorStatus.RUNNING

        clean_env.delenv("GLACIER_AMQP_URL")
        clean_env.delenv("GLACIER_BUCKET")
        clean_env.delenv("GLACIER_SENSOR_INTERVAL_SECONDS")
        intake, restore = _reloaded_sensors()
        assert intake.amqp_bridge_sensor.default_status == dg.DefaultSensorStatus.STOPPED
        assert intake.amqp_bridge_sensor.minimum_interval_seconds == 30
        assert restore.restore_completed_sensor.default_status == dg.DefaultSensorStatus.STOPPED
    finally:
        clean_env.undo()
        _reloaded_sensors()  # leave the modules as the rest of the suite imported them
