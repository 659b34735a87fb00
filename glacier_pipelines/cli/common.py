"""What every command shares: the exit-status rule (classify), the unexpected-error log, and the faults and helpers of runs/common.py.

Exit statuses: 0 all done; 1 a run or an item failed, or a transient fault (the work stays for a later pass);
2 refused input or configuration. An unexpected exception is logged in full (log_path()) and exits 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from glacier_pipelines.core.transport import TransportError
from glacier_pipelines.runs.common import (  # noqa: F401 - re-exported for the command modules
    QUIET_LOGS,
    ConfigFault,
    TransientFault,
    check_bucket,
    check_tenant,
    current_defs,
    ensure_dagster_home,
    print_table,
    to_stderr,
)
from glacier_pipelines.settings import load as load_settings


def one_line(exc: BaseException | str) -> str:
    """The message on one line: a SettingsError's lines (one per variable) joined with '; '."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    head, rest = lines[0], lines[1:]
    return head + (" " + "; ".join(rest) if rest else "")


def classify(exc: BaseException) -> tuple[int | None, str]:
    """(exit status, one line) for a foreseeable fault; (None, "") for an unexpected one.

    2: refused input or configuration (ValueError: SettingsError, CatalogConfigError, TransportConfigError, ConfigFault;
    OSError such as a missing file; MoveError; a StoreError S3 refused). 1: a transient fault, the work stays for a later pass (TransientFault,
    TransportError, CatalogUnavailable, a lost database connection, S3 unreachable, a transient StoreError).
    """
    import botocore.exceptions as bce
    import sqlalchemy.exc as sa_exc

    from glacier_pipelines.catalog.errors import CatalogUnavailable
    from glacier_pipelines.core.moves import MoveError

    from glacier_pipelines.core.objectstore.errors import StoreError

    if isinstance(exc, StoreError):  # the storage port's error: classified by what the store raised, else by its kind
        if isinstance(exc.__cause__, Exception):
            status, line = classify(exc.__cause__)
            if status is not None:
                return status, line
        if exc.transient:
            return 1, f"S3 did not answer ({one_line(exc)}); nothing is lost, try again later"
        return 2, one_line(exc)
    if isinstance(exc, (ValueError, MoveError)):
        return 2, one_line(exc)
    if isinstance(exc, (TransientFault, TransportError, CatalogUnavailable)):
        return 1, one_line(exc)
    if isinstance(exc, sa_exc.OperationalError) and exc.statement is None:
        from glacier_pipelines.catalog.errors import first_line

        return 1, f"the catalog's database is unreachable ({first_line(exc.orig or exc)}); try again once it is back (GLACIER_CATALOG_URL)"
    if isinstance(exc, (bce.EndpointConnectionError, bce.ConnectTimeoutError, bce.ReadTimeoutError, bce.ConnectionClosedError)):
        return 1, f"S3 is unreachable ({type(exc).__name__}: {one_line(exc)}); nothing is lost, try again later"
    if isinstance(exc, bce.NoCredentialsError):
        return 2, "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
    dagster = sys.modules.get("dagster")
    if dagster is not None and isinstance(exc, dagster.Failure):  # raised by a resource refusing its configuration
        return 2, one_line(exc.description or exc)
    if isinstance(exc, (ConnectionError, TimeoutError)):  # a peer refused or timed out: transient
        return 1, f"{type(exc).__name__}: {one_line(exc)}; nothing is lost, try again later"
    if isinstance(exc, OSError):  # a missing or unreadable file, a folder that cannot be created
        return 2, one_line(exc)
    return None, ""


def log_path() -> Path:
    """Where unexpected errors are logged in full: $GLACIER_HOME/logs/glacier-pipelines.log."""
    try:
        home = load_settings().home_dir
    except Exception:  # noqa: BLE001 - settings that do not load still leave a place to log
        home = Path(os.environ.get("GLACIER_HOME") or ".glacier").expanduser().resolve()
    return home / "logs" / "glacier-pipelines.log"


def log_unexpected(command: str, exc: BaseException) -> str:
    import datetime
    import tempfile
    import traceback

    text = (
        f"{datetime.datetime.now(datetime.timezone.utc).isoformat()} glacier-pipelines {command} (pid {os.getpid()}):\n"
        + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        + "\n"
    )
    for path in (log_path(), Path(tempfile.gettempdir()) / "glacier-pipelines.log"):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write(text)
            return str(path)
        except OSError:
            continue
    return "nowhere: the log file could not be written"
