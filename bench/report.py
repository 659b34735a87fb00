"""Every scenario writes the same three files: JSON (all figures), a markdown table, a PNG bar chart."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write(
    out: str | Path,
    report: dict[str, Any],
    lines: list[str],
    bars: dict[str, float],
    *,
    title: str,
    ylabel: str,
    limit: tuple[float, str] | None = None,
) -> None:
    """Write ``out``.json, ``out``.md and ``out``.png; the first bar is the pipeline's (green)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3), dpi=100)
    ax.bar(list(bars), list(bars.values()), color=["tab:green"] + ["tab:gray"] * (len(bars) - 1))
    if limit is not None:
        ax.axhline(limit[0], color="tab:red", linestyle="--", label=limit[1])
        ax.legend()
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"))
    plt.close(fig)
    print("\n".join(lines))


def _seaweed_children() -> list[tuple[int, list[str]]]:
    """(pid, the stat fields after the name) of this process's SeaweedFS children."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, _, tail = stat.read_text().rpartition(")")
        except OSError:
            continue  # ended while being read
        fields = tail.split()  # state, ppid, ... utime and stime are the 12th and 13th after the name
        if head.partition("(")[2] == "weed" and int(fields[1]) == os.getpid():
            found.append((int(stat.parent.name), fields))
    return found


def seaweed_cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process's SeaweedFS children; 0 where /proc is missing.

    The harness's server shares the two cores with whichever contender runs: the CPU it spends
    storing a contender's objects is part of what that way of uploading costs the machine.
    """
    ticks = sum(int(fields[11]) + int(fields[12]) for _, fields in _seaweed_children())
    return ticks / os.sysconf("SC_CLK_TCK")


def pin_seaweed(core: int) -> list[int]:
    """Put SeaweedFS (every thread of it) on ``core`` and this process, with whatever it starts from now on, on the others.

    For measuring a client alone: sharing two cores, whatever CPU a client spends beyond another's
    is taken from the server, so their MiB/s differ by both costs at once. Returns the other cores.
    """
    pids = [pid for pid, _ in _seaweed_children()]
    if not pids:
        raise RuntimeError("no SeaweedFS child to pin")
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            os.sched_setaffinity(int(task.name), {core})
    others = sorted(os.sched_getaffinity(0) - {core})
    if not others:
        raise RuntimeError(f"only core {core} is available: nothing left for the clients")
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():  # the HTTP server's thread too
        os.sched_setaffinity(int(task.name), others)
    return others


def seaweed_client(endpoint: str, **config: Any) -> Any:
    """A boto3 client for the harness's SeaweedFS (``config``: extra botocore Config; ``s3``: extra S3 options)."""
    import boto3
    from botocore.config import Config

    from glacier_pipelines.emulator import SEAWEED_ACCESS_KEY, SEAWEED_SECRET_KEY

    s3_options = {"addressing_style": "path", **config.pop("s3", {})}
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=SEAWEED_ACCESS_KEY,
        aws_secret_access_key=SEAWEED_SECRET_KEY,
        config=Config(s3=s3_options, **config),
    )


def seaweed_bucket(endpoint: str, prefix: str, **config: Any) -> tuple[Any, str]:
    """A boto3 client for the harness's SeaweedFS and a fresh bucket on it (``config``: extra botocore Config)."""
    import uuid

    s3 = seaweed_client(endpoint, **config)
    bucket = f"{prefix}-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    return s3, bucket
