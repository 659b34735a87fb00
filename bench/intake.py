"""Intake benchmark: N requests published to RabbitMQ, drained by amqp_bridge_sensor into the catalog.

Reports requests per second into the catalog (median of rounds) and run requests per tick.
Run: .venv/bin/python bench/intake.py [--requests 10000] [--rounds 3] [--tenants 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import report as bench_report  # noqa: E402


def one_round(n: int, tenants: int, catalog_url: str | None) -> dict:
    from glacier_pipelines.core.amqp import AmqpSettings, AmqpTransport
    from glacier_pipelines.core.transport import submission_to_message
    from glacier_pipelines.defs.intake.sensors import amqp_bridge_sensor
    from glacier_pipelines.resources import resources_from_env

    suffix = uuid.uuid4().hex[:8]
    home = tempfile.mkdtemp(prefix="bench-intake-")
    env = {
        "GLACIER_HOME": home,
        "GLACIER_REQUEST_TRANSPORT": "amqp",
        "GLACIER_AMQP_URL": os.environ.get("GLACIER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
        "GLACIER_REQUEST_QUEUE": f"bench.{suffix}.requests",
        "GLACIER_RESPONSE_ROUTING_KEY": f"bench.{suffix}.responses",
        "GLACIER_DEAD_LETTER_QUEUE": f"bench.{suffix}.dlq",
        "GLACIER_BUCKET": "bench",
    }
    if catalog_url:
        env["GLACIER_CATALOG_URL"] = catalog_url
    os.environ.update(env)
    resources = resources_from_env()
    settings = AmqpSettings(
        url=env["GLACIER_AMQP_URL"],
        request_queue=env["GLACIER_REQUEST_QUEUE"],
        response_routing_key=env["GLACIER_RESPONSE_ROUTING_KEY"],
        dead_letter_queue=env["GLACIER_DEAD_LETTER_QUEUE"],
    )
    with AmqpTransport(settings) as t:
        for i in range(n):
            t.publish_request(
                *submission_to_message(
                    {
                        "tenant": f"t{i % tenants}",
                        "requestId": f"r{i}",
                        "checksum": f"{i:032x}",
                        "algorithm": "MD5",
                        "url": f"file:///data/{i}.bin",
                        "destinationDirectory": "bench",
                    }
                )
            )
    ticks, runs = [], []
    with dg.instance_for_test() as instance:
        start = time.perf_counter()
        cursor = None
        while True:
            tick_start = time.perf_counter()
            result = amqp_bridge_sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources))
            received = json.loads(result.cursor)["received"] - (json.loads(cursor)["received"] if cursor else 0)
            cursor = result.cursor
            ticks.append(time.perf_counter() - tick_start)
            runs.append(len(result.run_requests))
            for req in result.dynamic_partitions_requests:
                instance.add_dynamic_partitions("tenants", list(req.partition_keys))
            if received == 0:
                break
        elapsed = time.perf_counter() - start - ticks[-1]  # the last, empty tick only confirms the queue is empty
    persisted = sum(resources["catalog"].get().status_counts().values())
    with AmqpTransport(settings) as t:
        t._open()
        for q in (settings.request_queue, settings.response_routing_key, settings.dead_letter_queue):
            t._channel.queue_delete(queue=q)
    return {
        "requests": n,
        "persisted": persisted,
        "seconds": elapsed,
        "requests_per_second": n / elapsed,
        "ticks": len(ticks) - 1,
        "max_tick_seconds": max(ticks),
        "run_requests_per_tick": runs[:-1],
        "tenants": tenants,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--catalog-url", default=None, help="default: SQLite in a temporary GLACIER_HOME")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "intake.json"))
    args = parser.parse_args()
    rounds = [one_round(args.requests, args.tenants, args.catalog_url) for _ in range(args.rounds)]
    summary = {
        "scenario": "intake",
        "command": " ".join(["bench/intake.py", *sys.argv[1:]]),
        "median_requests_per_second": statistics.median(r["requests_per_second"] for r in rounds),
        "rounds": rounds,
    }
    lines = ["| round | requests | persisted | seconds | requests/s | ticks | longest tick s |", "|---|---|---|---|---|---|---|"]
    lines += [
        f"| {n + 1} | {r['requests']} | {r['persisted']} | {r['seconds']:.2f} | {r['requests_per_second']:.0f} | {r['ticks']} | "
        f"{r['max_tick_seconds']:.1f} |"
        for n, r in enumerate(rounds)
    ]
    lines += ["", f"Median {summary['median_requests_per_second']:.0f} requests/s from RabbitMQ into the catalog."]
    bench_report.write(
        Path(args.out).with_suffix(""),
        summary,
        lines,
        {f"round {n + 1}": r["requests_per_second"] for n, r in enumerate(rounds)},
        title="AMQP bridge: requests persisted per second",
        ylabel="requests/s",
    )


if __name__ == "__main__":
    main()
