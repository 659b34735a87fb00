"""Whether a sensor or schedule starts on its own when the daemon loads the code location.

On when the operator asks for it (GLACIER_SENSORS_RUNNING=1, as the production configuration
does) and what it watches is configured; otherwise off, with one log line saying why, so a
stopped sensor is never a mystery. Evaluated once, when the definitions are imported.
"""

import logging
import os

import dagster as dg

from glacier_pipelines.settings import env

log = logging.getLogger("glacier_pipelines.automation")


def unset(*names: str) -> str | None:
    """What is missing among settings that must be given explicitly (their defaults do not count), or None."""
    missing = [name for name in names if not os.environ.get(name, "").strip()]
    return f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set" if missing else None


def transport_is(kind: str) -> str | None:
    """None when GLACIER_REQUEST_TRANSPORT selects `kind`, else the reason a sensor of that transport stays off."""
    current = env("GLACIER_REQUEST_TRANSPORT").lower()
    return None if current == kind else f"GLACIER_REQUEST_TRANSPORT is {current!r}, not {kind!r}"


def automation_on(name: str, missing: str | None = None) -> bool:
    """True when `name` should start by itself; `missing` names what is not configured (then it stays off)."""
    if env("GLACIER_SENSORS_RUNNING") != "1":
        log.info("%s starts stopped: GLACIER_SENSORS_RUNNING is not 1", name)
        return False
    if missing:
        log.warning("%s stays off although GLACIER_SENSORS_RUNNING=1: %s", name, missing)
        return False
    return True


def sensor_status(name: str, missing: str | None = None) -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if automation_on(name, missing) else dg.DefaultSensorStatus.STOPPED


def schedule_status(name: str, missing: str | None = None) -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if automation_on(name, missing) else dg.DefaultScheduleStatus.STOPPED


def interval(default: int) -> int:
    """A sensor's minimum_interval_seconds: its default, or GLACIER_SENSOR_INTERVAL_SECONDS when set (tests, busy sites)."""
    value = env("GLACIER_SENSOR_INTERVAL_SECONDS")
    return int(value) if value else default
