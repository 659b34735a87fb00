"""What the archive group's assets and checks share: owners, pools, retries, run identity, tables, faults."""

from collections.abc import Callable, Sequence
from typing import Any

import dagster as dg

from glacier_pipelines.core import faults

OWNERS = ["team:archive"]
# Concurrency pools (limits per instance: `dagster instance concurrency set`, or concurrency.pools.default_limit).
S3_UPLOADS = "s3_uploads"
GLACIER_RESTORES = "glacier_restores"
RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
TABLE_ROWS = 200  # rows of a metadata table; the catalog and `glacier-pipelines audit` have them all


def root_run_id(context: Any) -> str:
    """Work belongs to the root run, so a re-execution continues what its run started."""
    return context.run.root_run_id or context.run.run_id


def run_finished(context: Any) -> Callable[[str], bool]:
    """Whether the run that owns some work is over (or unknown here), so that this run may take the work over."""

    def finished(owner: str) -> bool:
        run = context.instance.get_run_by_id(owner)
        return run is None or run.is_finished

    return finished


def md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(head: Sequence[str], rows: Sequence[Sequence[Any]], empty: str, limit: int = TABLE_ROWS) -> dg.MetadataValue:
    """A markdown table for the UI (first ``limit`` rows, then a count of the rest)."""
    if not rows:
        return dg.MetadataValue.md(empty)
    lines = "\n".join("| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows[:limit])
    more = f"\n\n…and {len(rows) - limit} more" if len(rows) > limit else ""
    return dg.MetadataValue.md(f"| {' | '.join(head)} |\n|{'---|' * len(head)}\n{lines}{more}")


def step_fault(context: Any, exc: faults.ArchiveFault) -> dg.Failure:
    """A step stopped by S3: a transient fault is retried by the step's policy, a configuration fault is not."""
    context.log.error(str(exc))
    return dg.Failure(
        description=str(exc),
        allow_retries=exc.kind == "transient",
        metadata={"fault": exc.kind, "requests_kept_in_place": len(getattr(getattr(exc, "report", None), "held", []) or [])},
    )
