"""One Celery worker against two (issue #15, part 3): the same archive batch, steps run by dagster-celery over RabbitMQ.

Each round: a fresh PostgreSQL database (Dagster storage and catalog), a RabbitMQ vhost of its own, buckets on a moto
server (sources, archive, staging via GLACIER_STAGING_URL), FILES small files per tenant for TENANTS tenants, stored
alone (no packaging). The workers are ``dagster-celery worker start`` processes with ``--concurrency=1``, each with its
own working directory, GLACIER_HOME and DAGSTER_HOME; the runs are ``dagster job execute ... archive_job``, one per
tenant, started at once. Measured: wall time from launching the runs until every one has returned. The two
configurations alternate within one invocation; medians are reported.

    .venv/bin/python bench/celery_workers.py --files 100 --tenants 2 --rounds 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from glacier_pipelines.emulator import moto_server  # noqa: E402
from glacier_pipelines_tests.integration.conftest import (  # noqa: E402
    CeleryBroker,
    Processes,
    archive_env,
    catalog_report,
    celery_side,
    celery_worker_ready,
    persist_requests,
    start_celery_worker,
)

BASE_PG = os.environ.get("GLACIER_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


class _Env:
    """What persist_requests and catalog_report need of pytest's monkeypatch."""

    def setenv(self, name: str, value: str) -> None:
        os.environ[name] = value


def one_round(workers: int, files: int, tenants: int) -> dict:
    import dagster as dg

    admin = sa.create_engine(BASE_PG, isolation_level="AUTOCOMMIT")
    db = f"glacier_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{db}"'))
    pg = sa.engine.make_url(BASE_PG).set(database=db).render_as_string(hide_password=False)
    broker = CeleryBroker()
    tmp = Path(tempfile.mkdtemp(prefix="celery-bench-"))
    processes = Processes(tmp)
    names = [f"t{i}" for i in range(tenants)]
    try:
        with moto_server() as endpoint:
            bucket, sources, staging = (f"{n}-{uuid.uuid4().hex[:8]}" for n in ("bench", "sources", "staging"))
            base = archive_env(
                tmp,
                endpoint,
                bucket,
                GLACIER_CATALOG_URL=pg,
                DAGSTER_PG_URL=pg,
                GLACIER_STAGING_URL=f"s3://{staging}/staged",
                GLACIER_SOURCE_ROOTS="",
            )
            launcher, launcher_dir = celery_side(tmp, "launcher", base, broker.url)
            s3 = boto3.client(
                "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
            )
            for name in (bucket, sources, staging):
                s3.create_bucket(Bucket=name)
            requests = []
            for tenant in names:
                for i in range(files):
                    data = hashlib.sha256(f"{tenant}-{i}".encode()).digest() * 128  # 4 KiB
                    s3.put_object(Bucket=sources, Key=f"{tenant}/{i}.bin", Body=data)
                    requests.append(
                        {
                            "tenant": tenant,
                            "requestId": f"{tenant}-{i}",
                            "checksum": hashlib.md5(data).hexdigest(),
                            "algorithm": "MD5",
                            "url": f"s3://{sources}/{tenant}/{i}.bin",
                            "destinationDirectory": "b",
                            "owner": "bench",
                            "session": "s",
                        }
                    )
            persist_requests(launcher, requests, _Env())
            for name in ("DAGSTER_PG_URL", "DAGSTER_LOCAL_DIR", "DAGSTER_COMPUTE_LOGS_DIR"):
                os.environ[name] = launcher[name]
            with dg.DagsterInstance.from_config(launcher["DAGSTER_HOME"]) as instance:
                instance.add_dynamic_partitions("tenants", names)
            for w in range(workers):
                env, cwd = celery_side(tmp, f"worker{w}", base, broker.url)
                start_celery_worker(processes, f"worker{w}", env, cwd, concurrency=1)
            for w in range(workers):
                processes.wait_for(f"worker{w}", lambda w=w: celery_worker_ready(processes, f"worker{w}"), 300)
            started = time.monotonic()
            launches = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "dagster",
                        "job",
                        "execute",
                        "-m",
                        "glacier_pipelines.definitions",
                        "-j",
                        "archive_job",
                        "--tags",
                        json.dumps({"dagster/partition": t}),
                    ],
                    env=launcher,
                    cwd=launcher_dir,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for t in names
            ]
            codes = [p.wait(timeout=1800) for p in launches]
            wall = time.monotonic() - started
            per_worker = {
                f"worker{w}": len(re.findall(r"Task execute_plan\[[^\]]*\] succeeded", processes.log(f"worker{w}"))) for w in range(workers)
            }
            processes.stop()
            report = catalog_report(launcher, _Env())
            ok = sum(1 for r in requests if report[r["requestId"]]["status"] == "SUCCESS")
            return {
                "workers": workers,
                "wall_seconds": round(wall, 1),
                "exit_codes": codes,
                "success": ok,
                "requests": len(requests),
                "steps_per_worker": per_worker,
            }
    finally:
        processes.stop()
        broker.delete()
        from glacier_pipelines.resources.archive import _catalogs

        if pg in _catalogs:
            _catalogs.pop(pg).dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100, help="small files per tenant")
    parser.add_argument("--tenants", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results = []
    for _ in range(args.rounds):
        for workers in (1, 2):  # alternating, so both see the same background load on average
            result = one_round(workers, args.files, args.tenants)
            print(json.dumps(result), flush=True)
            results.append(result)
    summary = {}
    for workers in (1, 2):
        walls = [r["wall_seconds"] for r in results if r["workers"] == workers]
        summary[workers] = {"median_wall_seconds": statistics.median(walls), "walls": walls}
    summary["speedup"] = round(summary[1]["median_wall_seconds"] / summary[2]["median_wall_seconds"], 2)
    out = ROOT / "bench" / "results" / "celery-workers.json"
    out.write_text(
        json.dumps({"command": " ".join(["bench/celery_workers.py", *sys.argv[1:]]), "rounds": results, "summary": summary}, indent=2)
        + "\n"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
