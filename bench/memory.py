"""Peak memory of the pipeline archiving one large file, at several sizes: it must not grow with the file.

Each size is archived once by bench/pipeline_once.py in a child process (fetch over HTTP,
MD5 + SHA-256, multipart upload with part checksums, catalog) against SeaweedFS on
127.0.0.1; the child's peak RSS comes from getrusage. Target: at most 256 MiB at every size.

    .venv/bin/python bench/memory.py --sizes-mib 1024,4096
    .venv/bin/python bench/memory.py --quick              # 256 and 1024 MiB, written to memory-quick.*
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import report as bench_report  # noqa: E402
from large_file import MiB, PY, make_file, serve, timed  # noqa: E402

from glacier_pipelines.emulator import seaweedfs_server  # noqa: E402

LIMIT_MIB = 256


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes-mib", default="1024,4096")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "memory"))
    args = parser.parse_args()
    sizes = [256, 1024] if args.quick else [int(s) for s in args.sizes_mib.split(",")]
    if args.quick and args.out == parser.get_default("out"):
        args.out += "-quick"  # never over the full-size results
    work = Path(tempfile.mkdtemp(prefix="bench-memory-", dir=os.environ.get("BENCH_DIR") or None))
    rows = []
    try:
        src = work / "src"
        src.mkdir()
        http_server, http_base = serve(src)
        with seaweedfs_server(work / "weed") as endpoint:
            s3, bucket = bench_report.seaweed_bucket(endpoint, "memory")
            for size_mib in sizes:
                name = f"f{size_mib}.bin"
                print(f"writing {size_mib} MiB of random bytes...", file=sys.stderr)
                md5 = make_file(src / name, size_mib * MiB)
                home = work / f"home{size_mib}"
                home.mkdir()
                elapsed, cpu, out = timed(
                    [PY, str(ROOT / "bench" / "pipeline_once.py"), f"{http_base}/{name}", md5, endpoint, bucket, str(home)],
                    dict(os.environ),
                )
                detail = json.loads(out.strip().splitlines()[-1])
                if detail["stored"] != 1 or detail["failed"]:
                    raise RuntimeError(f"pipeline did not store the file: {detail}")
                rows.append(
                    {
                        "size_mib": size_mib,
                        "max_rss_mib": detail["max_rss_mib"],
                        "mib_per_s": size_mib / elapsed,
                        "cpu_s_per_gib": cpu / (size_mib / 1024),
                    }
                )
                print(f"{size_mib:6d} MiB: peak RSS {detail['max_rss_mib']:.0f} MiB, {size_mib / elapsed:.1f} MiB/s", file=sys.stderr)
                (src / name).unlink()
        http_server.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    peak = max(r["max_rss_mib"] for r in rows)
    report = {
        "scenario": "memory",
        "limit_mib": LIMIT_MIB,
        "peak_rss_mib": peak,
        "within_limit": peak <= LIMIT_MIB,
        "spread_mib": peak - min(r["max_rss_mib"] for r in rows),
        "rows": rows,
        "command": " ".join(["bench/memory.py", *sys.argv[1:]]),
    }
    lines = ["| file size MiB | pipeline peak RSS MiB | MiB/s | CPU-s/GiB |", "|---|---|---|---|"]
    lines += [f"| {r['size_mib']} | {r['max_rss_mib']:.0f} | {r['mib_per_s']:.1f} | {r['cpu_s_per_gib']:.1f} |" for r in rows]
    lines += ["", f"Peak {peak:.0f} MiB (limit {LIMIT_MIB}); spread across sizes {report['spread_mib']:.0f} MiB."]
    bench_report.write(
        args.out,
        report,
        lines,
        {f"{r['size_mib']} MiB": r["max_rss_mib"] for r in rows},
        title="Pipeline peak memory by file size (flat is the goal)",
        ylabel="peak RSS MiB",
        limit=(LIMIT_MIB, f"limit {LIMIT_MIB} MiB"),
    )


if __name__ == "__main__":
    main()
