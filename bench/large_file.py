"""Large file: the pipeline against the raw uploads users would otherwise run, side by side, on SeaweedFS.

Each round runs every contender once, in a rotated order, against the same local S3 server
(SeaweedFS on 127.0.0.1) and the same random bytes. Reports the median MiB/s, the ratio to
the fastest raw peer, CPU seconds per GiB and the pipeline's peak RSS, plus what each digest the
pipeline computes (MD5 requested, SHA-256 for the catalog, CRC32 per part for S3) costs on the same
bytes, and the targets of issue #18: client CPU at most ``aws s3 cp``'s plus MD5's own, throughput at
least 0.95x the fastest raw peer.

    .venv/bin/python bench/large_file.py --size-mib 2048 --rounds 3
    .venv/bin/python bench/large_file.py --quick          # 256 MiB, 2 rounds, written to large_file-quick.*
    .venv/bin/python bench/large_file.py --server-core 0 --out bench/results/large_file-pinned   # SeaweedFS on a core of its own
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import report as bench_report  # noqa: E402
from glacier_pipelines.emulator import SEAWEED_ACCESS_KEY, SEAWEED_SECRET_KEY, seaweedfs_server  # noqa: E402

MiB = 1 << 20
PY = sys.executable


def make_file(path: Path, size: int) -> str:
    md5 = hashlib.md5()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(left, 8 * MiB))
            md5.update(block)
            f.write(block)
            left -= len(block)
    return md5.hexdigest()


DIGESTS = {"MD5": lambda: hashlib.md5(), "SHA-256": lambda: hashlib.sha256(), "CRC32": lambda: _Crc32()}


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = zlib.crc32(data, self.value)


def digest_costs(path: Path) -> dict[str, float]:
    """CPU seconds per GiB of each digest the pipeline computes, on the file's bytes (read once into memory per block)."""
    costs = dict.fromkeys(DIGESTS, 0.0)
    hashers = {name: make() for name, make in DIGESTS.items()}
    size = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 * MiB), b""):
            size += len(block)
            for name, h in hashers.items():
                start = time.process_time()
                h.update(block)
                costs[name] += time.process_time() - start
    return {name: cpu / (size / (1 << 30)) for name, cpu in costs.items()}


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(directory), **kw)

        def log_message(self, *a):
            pass

        def copyfile(self, source, outputfile):  # sendfile: the source side should not be the bottleneck
            size, offset = os.fstat(source.fileno()).st_size, 0
            while offset < size:  # one sendfile call moves at most about 2 GiB
                offset += os.sendfile(outputfile.fileno(), source.fileno(), offset, size - offset)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {proc.stderr[-2000:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--peers", default="boto3,s5cmd,rclone,awscli")
    parser.add_argument("--part-mib", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "large_file"))
    parser.add_argument(
        "--server-core",
        type=int,
        default=None,
        help="pin SeaweedFS to this core and every contender to the others (each client measured without taking the server's CPU)",
    )
    args = parser.parse_args()
    if args.quick:
        args.size_mib, args.rounds = 256, 2
        if args.out == parser.get_default("out"):
            args.out += "-quick"  # never over the full-size results
    size = args.size_mib * MiB
    work = Path(tempfile.mkdtemp(prefix="bench-large-", dir=os.environ.get("BENCH_DIR") or None))
    peers = [p for p in args.peers.split(",") if p]
    missing = [
        p
        for p, exe in (("s5cmd", "s5cmd"), ("rclone", "rclone"), ("awscli", "aws"))
        if p in peers and not (shutil.which(exe) or (Path(PY).parent / exe).exists())
    ]
    for p in missing:
        print(f"peer {p} not installed: left out (see bench/README.md)", file=sys.stderr)
        peers.remove(p)
    try:
        src = work / "src"
        src.mkdir()
        print(f"writing {args.size_mib} MiB of random bytes...", file=sys.stderr)
        md5 = make_file(src / "big.bin", size)
        costs = digest_costs(src / "big.bin")
        print("digest CPU-s/GiB: " + ", ".join(f"{n} {c:.2f}" for n, c in costs.items()), file=sys.stderr)
        http_server, http_base = serve(src)
        with seaweedfs_server(work / "weed") as endpoint:
            s3, bucket = bench_report.seaweed_bucket(endpoint, "bench")
            client_cores = None if args.server_core is None else bench_report.pin_seaweed(args.server_core)
            env = dict(
                os.environ,
                AWS_ACCESS_KEY_ID=SEAWEED_ACCESS_KEY,
                AWS_SECRET_ACCESS_KEY=SEAWEED_SECRET_KEY,
                AWS_DEFAULT_REGION="us-east-1",
                AWS_REGION="us-east-1",
                S3_ENDPOINT_URL=endpoint,
                RCLONE_CONFIG_BENCH_TYPE="s3",
                RCLONE_CONFIG_BENCH_PROVIDER="Other",
                RCLONE_CONFIG_BENCH_ENDPOINT=endpoint,
                RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=SEAWEED_ACCESS_KEY,
                RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=SEAWEED_SECRET_KEY,
                PATH=f"{Path(PY).parent}:{os.environ['PATH']}",
            )
            env.pop("AWS_CA_BUNDLE", None)  # rclone refuses a custom CA bundle with its own transport; the endpoint is plain HTTP
            local = str(src / "big.bin")
            commands = {
                "pipeline": lambda n: [
                    PY,
                    str(ROOT / "bench" / "pipeline_once.py"),
                    f"{http_base}/big.bin",
                    md5,
                    endpoint,
                    bucket,
                    str(work / f"home{n}"),
                    str(args.part_mib),
                    str(args.concurrency),
                ],
                "pipeline_file": lambda n: [
                    PY,
                    str(ROOT / "bench" / "pipeline_once.py"),
                    (src / "big.bin").as_uri(),
                    md5,
                    endpoint,
                    bucket,
                    str(work / f"home-file{n}"),
                    str(args.part_mib),
                    str(args.concurrency),
                ],
                "boto3": lambda n: [
                    PY,
                    "-c",
                    "import boto3,os,sys; boto3.client('s3', endpoint_url=os.environ['S3_ENDPOINT_URL'])"
                    f".upload_file({local!r}, {bucket!r}, 'boto3/{n}')",
                ],
                "s5cmd": lambda n: ["s5cmd", "--endpoint-url", endpoint, "cp", local, f"s3://{bucket}/s5cmd/{n}"],
                "rclone": lambda n: ["rclone", "copyto", local, f"bench:{bucket}/rclone/{n}", "--s3-no-check-bucket"],
                "awscli": lambda n: [
                    "aws",
                    "--endpoint-url",
                    endpoint,
                    "s3",
                    "cp",
                    local,
                    f"s3://{bucket}/awscli/{n}",
                    "--only-show-errors",
                ],
            }
            contenders = ["pipeline", "pipeline_file", *peers]
            results: dict[str, list[dict]] = {c: [] for c in contenders}
            for round_no in range(args.rounds):
                order = contenders[round_no % len(contenders) :] + contenders[: round_no % len(contenders)]
                for name in order:
                    if name == "pipeline":
                        (work / f"home{round_no}").mkdir(exist_ok=True)
                    if name == "pipeline_file":
                        (work / f"home-file{round_no}").mkdir(exist_ok=True)
                    server_cpu = bench_report.seaweed_cpu_seconds()
                    elapsed, cpu, out = timed(commands[name](round_no), env)
                    row = {
                        "seconds": elapsed,
                        "mib_per_s": size / MiB / elapsed,
                        "cpu_s_per_gib": cpu / (size / (1 << 30)),
                        "server_cpu_s_per_gib": (bench_report.seaweed_cpu_seconds() - server_cpu) / (size / (1 << 30)),
                    }
                    if name in ("pipeline", "pipeline_file"):
                        detail = json.loads(out.strip().splitlines()[-1])
                        if detail["stored"] != 1 or detail["failed"]:
                            raise RuntimeError(f"pipeline did not store the file: {detail}")
                        row["max_rss_mib"] = detail["max_rss_mib"]
                    results[name].append(row)
                    print(
                        f"round {round_no + 1}: {name:<13} {row['mib_per_s']:7.1f} MiB/s  {row['cpu_s_per_gib']:5.1f} CPU-s/GiB",
                        file=sys.stderr,
                    )
        http_server.shutdown()
        summary = {
            name: {
                "median_mib_per_s": statistics.median(r["mib_per_s"] for r in rows),
                "median_cpu_s_per_gib": statistics.median(r["cpu_s_per_gib"] for r in rows),
                "median_server_cpu_s_per_gib": statistics.median(r["server_cpu_s_per_gib"] for r in rows),
                **({"max_rss_mib": max(r["max_rss_mib"] for r in rows)} if name.startswith("pipeline") else {}),
                "rounds": rows,
            }
            for name, rows in results.items()
        }
        fastest = max((p for p in peers), key=lambda p: summary[p]["median_mib_per_s"]) if peers else None
        report = {
            "scenario": "large_file",
            "size_mib": args.size_mib,
            "rounds": args.rounds,
            "part_mib": args.part_mib,
            "concurrency": args.concurrency,
            "server_core": args.server_core,
            "client_cores": client_cores,
            "digest_cpu_s_per_gib": costs,
            "fastest_peer": fastest,
            "pipeline_to_fastest_peer": (summary["pipeline"]["median_mib_per_s"] / summary[fastest]["median_mib_per_s"])
            if fastest
            else None,
            "command": " ".join(["bench/large_file.py", *sys.argv[1:]]),
            "results": summary,
        }
        lines = [
            f"# Large file: {args.size_mib} MiB, {args.rounds} rounds, SeaweedFS on 127.0.0.1"
            + ("" if client_cores is None else f" pinned to core {args.server_core}, the contenders to {client_cores}"),
            "",
            "| contender | median MiB/s | pipeline ÷ contender | median CPU-s/GiB (client) | median CPU-s/GiB (SeaweedFS) | peak RSS MiB |",
            "|---|---|---|---|---|---|",
        ]
        for name, s in summary.items():
            ratio = summary["pipeline"]["median_mib_per_s"] / s["median_mib_per_s"]
            rss = f"{s['max_rss_mib']:.0f}" if "max_rss_mib" in s else ""
            lines.append(
                f"| {name} | {s['median_mib_per_s']:.1f} | {ratio:.2f} | {s['median_cpu_s_per_gib']:.2f} "
                f"| {s['median_server_cpu_s_per_gib']:.2f} | {rss} |"
            )
        lines += [
            "",
            "Digest cost on these bytes, in memory (CPU-s/GiB): " + ", ".join(f"{n} {c:.2f}" for n, c in costs.items()) + ".",
            f"Pipeline / fastest raw peer ({fastest}): {report['pipeline_to_fastest_peer']:.2f} (target at least 0.95)" if fastest else "",
        ]
        if "awscli" in summary:
            budget = summary["awscli"]["median_cpu_s_per_gib"] + costs["MD5"]
            report["cpu_budget_s_per_gib"] = budget
            lines.append(
                f"Pipeline client CPU: {summary['pipeline']['median_cpu_s_per_gib']:.2f} CPU-s/GiB over HTTP, "
                f"{summary['pipeline_file']['median_cpu_s_per_gib']:.2f} from file:// (as the peers read it); target at most "
                f"`aws s3 cp`'s {summary['awscli']['median_cpu_s_per_gib']:.2f} + MD5's {costs['MD5']:.2f} = {budget:.2f}."
            )
        bench_report.write(
            args.out,
            report,
            lines,
            {n: summary[n]["median_mib_per_s"] for n in summary},
            title=f"{args.size_mib} MiB to SeaweedFS (higher is better)",
            ylabel="median MiB/s",
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
