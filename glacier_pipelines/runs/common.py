"""What every run from the command line or the demo shares: the two faults, the Dagster instance, the bucket check.

TransientFault and ConfigFault carry the exit-status rule (1: the work stays for a later pass; 2: refused
configuration) that cli/common.py applies.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from glacier_pipelines.settings import Settings

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class TransientFault(Exception):
    """Something the command needs is unreachable for now (S3, the broker, the catalog's server): exit status 1, work kept."""


class ConfigFault(ValueError):
    """A setting refused by the service it names (bucket, credentials): exit status 2, nothing touched."""


def ensure_dagster_home(settings: Settings) -> Path:
    """Use $DAGSTER_HOME, or an instance under $GLACIER_HOME/dagster (SQLite, telemetry off).

    A relative or missing $DAGSTER_HOME is a ValueError naming the variable (Dagster would raise a traceback).
    """
    if os.environ.get("DAGSTER_HOME"):
        given = Path(os.environ["DAGSTER_HOME"]).expanduser()
        if not given.is_absolute():
            raise ValueError(
                f"DAGSTER_HOME={os.environ['DAGSTER_HOME']!r} is relative: give an absolute path, "
                "or unset DAGSTER_HOME to use $GLACIER_HOME/dagster"
            )
        if not given.is_dir():
            raise ValueError(
                f"DAGSTER_HOME={str(given)!r} is not an existing folder: create it, or unset DAGSTER_HOME to use $GLACIER_HOME/dagster"
            )
        return given
    home = settings.home / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def current_defs(defs: Any = None) -> Any:
    """The Definitions built from the environment as it is now (the module-level ``defs`` froze it at first import)."""
    if defs is not None:
        return defs
    from glacier_pipelines.definitions import build_defs

    return build_defs()


def to_stderr(message: str) -> None:
    """The default progress line: stderr, so that --json output on stdout stays one document."""
    print(message, file=sys.stderr, flush=True)


def check_tenant(tenant: str, allowed: tuple[str, ...] | list[str] = ()) -> str:
    """A tenant named on the command line, refused (ValueError) before it can become a Dagster partition."""
    from glacier_pipelines.core.keys import validate_tenant

    validate_tenant(tenant)  # InvalidKey is a ValueError
    if allowed and tenant not in allowed:
        raise ValueError(f"tenant {tenant!r} is not among the allowed tenants (GLACIER_TENANTS={','.join(allowed)})")
    return tenant


def check_bucket(store: Any) -> None:
    """One HeadBucket before any run: refused credentials or a missing bucket is a ConfigFault, an unreachable S3 a TransientFault."""
    import botocore.exceptions as bce

    bucket = store.bucket
    try:
        store.client().head_bucket(Bucket=bucket)
    except bce.NoCredentialsError:
        raise ConfigFault(
            f"no AWS credentials found for bucket {bucket!r}: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "or AWS_PROFILE; no request was touched"
        ) from None
    except bce.ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchBucket", "404", "NotFound") or status == 404:
            raise ConfigFault(
                f"bucket {bucket!r} does not exist: fix GLACIER_BUCKET (or create the bucket); no request was touched"
            ) from None
        if code in (
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AccessDenied",
            "403",
            "Forbidden",
            "InvalidClientTokenId",
            "ExpiredToken",
            "InvalidToken",
        ) or status in (401, 403):
            raise ConfigFault(
                f"S3 refused the AWS credentials for bucket {bucket!r} ({code or status}): fix the AWS credentials "
                "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE) or GLACIER_BUCKET; no request was touched"
            ) from None
        if status is not None and status >= 500 or code in ("SlowDown", "ServiceUnavailable", "InternalError"):
            raise TransientFault(
                f"S3 answered {code or status} for bucket {bucket!r}; the requests stay pending for the next pass"
            ) from None
        raise ConfigFault(
            f"S3 refused bucket {bucket!r} ({code or status}: {error.get('Message', '')}): "
            "check GLACIER_BUCKET and the AWS credentials; no request was touched"
        ) from None
    except (bce.EndpointConnectionError, bce.ConnectTimeoutError, bce.ReadTimeoutError, bce.ConnectionClosedError) as exc:
        raise TransientFault(f"S3 is unreachable ({type(exc).__name__}: {exc}); the requests stay pending for the next pass") from None


def run_restore_job(instance: Any, tenant: str, run_config: dict[str, Any] | None = None, *, defs: Any = None) -> Any:
    """restore_job for one tenant on ``instance`` (its partition added first), quiet logs."""
    from glacier_pipelines.defs.partitions import tenants as tenants_partitions

    defs = current_defs(defs)

    if not instance.has_dynamic_partition(tenants_partitions.name, tenant):
        instance.add_dynamic_partitions(tenants_partitions.name, [tenant])
    config = {**QUIET_LOGS, **(run_config or {})}
    return defs.resolve_job_def("restore_job").execute_in_process(
        partition_key=tenant, instance=instance, raise_on_error=False, run_config=config, tags={"glacier/tenant": tenant}
    )


def print_table(rows: list[dict[str, Any]]) -> None:
    """The requests as `report` prints them: one line each, the stored object or the messages last."""
    if not rows:
        print("no requests")
        return
    header = ("tenant", "requestId", "status", "size", "image", "storedFileUrl / messages")
    lines = [header]
    for r in rows:
        image = f"{r['widthInPx']}x{r['heightInPx']}" if r.get("widthInPx") is not None else ""
        where = r["storedFileUrl"] or "; ".join(r["messages"])
        lines.append((r["tenant"], r["requestId"], r["status"], str(r["fileSizeInBytes"] or ""), image, where[:110]))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header) - 1)]
    for line in lines:
        print("  ".join(str(v).ljust(w) for v, w in zip(line[:-1], widths)) + "  " + line[-1])
