"""Small files: the pipeline with packaging against one PutObject per file, same endpoint, same files.

N files of 1 to 64 KiB (random sizes and bytes) are archived twice per round against
SeaweedFS on 127.0.0.1: (a) through the archive steps with activateSmallFilePackaging
(fetch from file://, verify, stage, pack into tar packages, upload with manifests, catalog);
(b) uploaded one PutObject each from a thread pool of 8 (boto3); (c) the ceiling: all their
bytes, already in one local file, sent as one boto3 upload with nothing else done. Reports
files/s, the ratios, and objects created.

    .venv/bin/python bench/small_files.py --files 10000 --rounds 3
    .venv/bin/python bench/small_files.py --quick
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
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


def pipeline(files, s3, bucket, home: Path, src: Path) -> dict:
    catalog = Catalog(f"sqlite:///{home}/catalog.sqlite")
    setup = archive_flow.ArchiveSetup(
        catalog=catalog,
        s3=s3,
        upload=UploadSettings(bucket=bucket, storage_class="DEEP_ARCHIVE", max_concurrency=4),
        sources=SourcePolicy.from_strings(str(src)),
        key_prefix="pipeline",
        staging_dir=home / "staging",
        stale_upload_age=timedelta(hours=24),
        packaging=packaging.PackagingPolicy(),
    )
    start = time.perf_counter()
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
    batch, _ = archive_flow.claim_batch(catalog, "bench", "run", len(files), lambda run: True)
    verified = archive_flow.verify_batch(setup, batch, "bench", "run")
    archive_flow.store_batch(setup, batch, "bench", "run")
    packaging.add_verified_members(setup, batch, "bench", "run")
    packed = packaging.close_due(setup, setup.packaging, "bench", "run", close_all=True)
    checked = packaging.check_packages(setup, "bench")  # package_integrity: reads each package back, then answers its members
    elapsed = time.perf_counter() - start
    counts = catalog.status_counts("bench")
    if counts.get("SUCCESS") != len(files) or verified.failed or packed.failed or checked.problems:
        raise RuntimeError(
            f"pipeline did not store every file: {counts}, {verified.failed[:3]}, {packed.failed[:3]}, {checked.problems[:3]}"
        )
    return {"seconds": elapsed, "objects": 2 * packed.closed}  # each package and its manifest


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "small_files"))
    args = parser.parse_args()
    if args.quick:
        args.files, args.rounds = 2000, 1
    work = Path(tempfile.mkdtemp(prefix="bench-small-", dir=os.environ.get("BENCH_DIR") or None))
    try:
        files = make_files(work / "src", args.files)
        blob = work / "all.bin"
        with open(blob, "wb") as out:
            for path, _ in files:
                out.write(path.read_bytes())
        with seaweedfs_server(work / "weed") as endpoint:
            s3, bucket = bench_report.seaweed_bucket(endpoint, "small", s3={"payload_signing_enabled": False}, max_pool_connections=16)
            rows = {"pipeline": [], "put_each": [], "bytes_alone": []}
            for n in range(args.rounds):
                order = ["pipeline", "put_each", "bytes_alone"] if n % 2 == 0 else ["bytes_alone", "put_each", "pipeline"]
                for name in order:
                    if name == "pipeline":
                        home = work / f"home{n}"
                        home.mkdir()
                        row = pipeline(files, s3, bucket, home, work / "src")
                    elif name == "put_each":
                        row = put_each(files, s3, bucket, f"put{n}")
                    else:
                        row = bytes_alone(s3, bucket, f"alone{n}", blob)
                    row["files_per_s"] = args.files / row["seconds"]
                    rows[name].append(row)
                    print(f"round {n + 1}: {name:<9} {row['files_per_s']:8.0f} files/s, {row['objects']} objects", file=sys.stderr)
        med = {k: statistics.median(r["files_per_s"] for r in v) for k, v in rows.items()}
        report = {
            "scenario": "small_files",
            "files": args.files,
            "rounds": args.rounds,
            "median_files_per_s": med,
            "ratio": med["pipeline"] / med["put_each"],
            "ceiling_ratio": med["bytes_alone"] / med["put_each"],
            "objects": {k: v[0]["objects"] for k, v in rows.items()},
            "command": " ".join(["bench/small_files.py", *sys.argv[1:]]),
            "rounds_detail": rows,
        }
        lines = [
            f"# Small files: {args.files} files of 1-64 KiB, {args.rounds} round(s), SeaweedFS on 127.0.0.1",
            "",
            "| contender | median files/s | objects |",
            "|---|---|---|",
            f"| pipeline with packaging | {med['pipeline']:.0f} | {report['objects']['pipeline']} |",
            f"| one PutObject per file (8 threads) | {med['put_each']:.0f} | {report['objects']['put_each']} |",
            f"| ceiling: the same bytes as one upload, nothing else | {med['bytes_alone']:.0f} | 1 |",
            "",
            f"ratio {report['ratio']:.2f}x files/s; {report['objects']['put_each'] / max(1, report['objects']['pipeline']):.0f}x fewer objects; "
            f"ceiling {report['ceiling_ratio']:.2f}x",
        ]
        bench_report.write(
            args.out,
            report,
            lines,
            {"pipeline + packaging": med["pipeline"], "PutObject each": med["put_each"], "bytes alone (ceiling)": med["bytes_alone"]},
            title=f"{args.files} small files (higher is better)",
            ylabel="median files/s",
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
