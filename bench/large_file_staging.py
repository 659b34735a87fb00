"""Large file: streamed in one step (the pipeline's path) against staged first, then uploaded by a later step.

Why files above the multipart threshold skip staging (docs/scaling.md, "Large files skip staging"). One
file of random bytes, the project's own code for every contender, against SeaweedFS on 127.0.0.1:

- ``streamed``: source -> hash (MD5 + SHA-256) -> multipart parts, in one pass; completed once the
  checksum matched (``stage_stream`` + ``commit_stage``, what ``verified_files``/``glacier_objects`` do);
- ``staged-local``: source -> hash -> a staged file on local disk (fsynced), then that file ->
  multipart (the embedded default's staging, were large files staged);
- ``staged-s3``: source -> hash -> a staging object in S3 (``GLACIER_STAGING_URL``), then read back
  -> multipart into the archive key, then the staging object deleted (staging that any worker reads).

Per contender: wall time, process CPU, bytes read and written on each side (source, local disk, S3
up and down) and the S3 requests sent, counted by botocore's own event hooks.

    .venv/bin/python bench/large_file_staging.py --size-mib 512 --rounds 3
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import report as bench_report  # noqa: E402
from glacier_pipelines.core import checksums, transfer  # noqa: E402
from glacier_pipelines.core.constants import MiB  # noqa: E402
from glacier_pipelines.core.objectstore import bucket_stores  # noqa: E402
from glacier_pipelines.emulator import seaweedfs_server  # noqa: E402

CHUNK = MiB


class Meter:
    """Bytes by place and S3 requests by operation, from botocore's event hooks and the contenders' own reads and writes."""

    def __init__(self, s3):
        self.bytes: Counter = Counter()
        self.requests: Counter = Counter()
        s3.meta.events.register("before-send.s3", self._sent)
        s3.meta.events.register("after-call.s3", self._received)

    def _sent(self, request, event_name, **_):
        self.requests[event_name.rsplit(".", 1)[-1]] += 1
        self.bytes["s3_up"] += int(request.headers.get("Content-Length", 0) or 0)

    def _received(self, http_response, model, **_):
        if model.name == "GetObject":
            self.bytes["s3_down"] += int(http_response.headers.get("content-length", 0) or 0)

    def reset(self):
        self.bytes.clear()
        self.requests.clear()


def source_chunks(path: Path, meter: Meter, key: str = "source_read"):
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            meter.bytes[key] += len(block)
            yield block


def streamed(s3, settings, path, md5, meter, work, n):
    result = transfer.stage_stream(
        source_chunks(path, meter),
        stores=bucket_stores(s3),
        settings=settings,
        key=f"streamed/{n}",
        algorithm="MD5",
        expected_checksum=md5,
        staging_path=work / "unused",
    )
    transfer.commit_stage(bucket_stores(s3), settings, result.stage)


def staged_local(s3, settings, path, md5, meter, work, n):
    staged = work / f"staged-{n}.bin"
    digest = checksums.MultiDigest(["MD5", checksums.S3_ALGORITHM])
    with open(staged, "wb") as f:  # step 1 (verified_files): fetch, hash, stage durably
        for block in source_chunks(path, meter):
            digest.update(block)
            f.write(block)
            meter.bytes["disk_write"] += len(block)
        f.flush()
        os.fsync(f.fileno())
    assert digest.hexdigest("MD5") == md5
    # step 2 (glacier_objects): the staged file into a multipart upload (hashed again for its part checksums)
    result = transfer.stage_stream(
        source_chunks(staged, meter, "disk_read"),
        stores=bucket_stores(s3),
        settings=settings,
        key=f"staged-local/{n}",
        algorithm="MD5",
        expected_checksum=md5,
        staging_path=work / "unused",
    )
    transfer.commit_stage(bucket_stores(s3), settings, result.stage)
    staged.unlink()


def staged_s3(s3, settings, path, md5, meter, work, n):
    staging_key = f"staging/{n}"
    first = transfer.stage_stream(
        source_chunks(path, meter),
        stores=bucket_stores(s3),
        settings=settings,
        key=staging_key,
        algorithm="MD5",
        expected_checksum=md5,
        staging_path=work / "unused",
    )  # step 1: into the staging prefix
    transfer.commit_stage(bucket_stores(s3), settings, first.stage)

    def read_back():  # step 2, maybe on another machine: the staged bytes come back down and go up again
        body = s3.get_object(Bucket=settings.bucket, Key=staging_key)["Body"]
        for block in iter(lambda: body.read(CHUNK), b""):
            yield block

    result = transfer.stage_stream(
        read_back(),
        stores=bucket_stores(s3),
        settings=settings,
        key=f"staged-s3/{n}",
        algorithm="MD5",
        expected_checksum=md5,
        staging_path=work / "unused",
    )
    transfer.commit_stage(bucket_stores(s3), settings, result.stage)
    s3.delete_object(Bucket=settings.bucket, Key=staging_key)


CONTENDERS = {"streamed": streamed, "staged-local": staged_local, "staged-s3": staged_s3}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "large_file_staging"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-staging-", dir=os.environ.get("BENCH_DIR") or None))
    try:
        path = work / "big.bin"
        md5 = hashlib.md5()
        with open(path, "wb") as f:
            for _ in range(args.size_mib):
                block = os.urandom(MiB)
                md5.update(block)
                f.write(block)
        with seaweedfs_server(work / "weed") as endpoint:
            s3, bucket = bench_report.seaweed_bucket(endpoint, "staging")
            settings = transfer.UploadSettings(bucket=bucket, storage_class="STANDARD")
            meter = Meter(s3)
            rows: dict[str, list[dict]] = {name: [] for name in CONTENDERS}
            for round_no in range(args.rounds):
                names = list(CONTENDERS)
                for name in names[round_no % len(names) :] + names[: round_no % len(names)]:
                    meter.reset()
                    wall, cpu = time.perf_counter(), time.process_time()
                    CONTENDERS[name](s3, settings, path, md5.hexdigest(), meter, work, round_no)
                    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                    row = {
                        "seconds": wall,
                        "mib_per_s": args.size_mib / wall,
                        "cpu_s": cpu,
                        "bytes": dict(meter.bytes),
                        "requests": dict(meter.requests),
                        "request_count": sum(meter.requests.values()),
                    }
                    rows[name].append(row)
                    print(
                        f"round {round_no + 1}: {name:<13} {row['mib_per_s']:7.1f} MiB/s  {cpu:5.1f} CPU-s  "
                        f"{row['request_count']} requests  {dict(meter.bytes)}",
                        file=sys.stderr,
                    )
        summary = {
            name: {
                "median_seconds": statistics.median(r["seconds"] for r in rs),
                "median_mib_per_s": statistics.median(r["mib_per_s"] for r in rs),
                "median_cpu_s": statistics.median(r["cpu_s"] for r in rs),
                "bytes": rs[-1]["bytes"],
                "requests": rs[-1]["requests"],
                "request_count": rs[-1]["request_count"],
                "rounds": rs,
            }
            for name, rs in rows.items()
        }
        report = {
            "scenario": "large_file_staging",
            "size_mib": args.size_mib,
            "rounds": args.rounds,
            "part_mib": settings.part_size // MiB,
            "concurrency": settings.max_concurrency,
            "command": " ".join([".venv/bin/python bench/large_file_staging.py", *sys.argv[1:]]),
            "results": summary,
        }
        base = summary["streamed"]
        lines = [
            f"# Large file, streamed or staged: {args.size_mib} MiB, {args.rounds} rounds, SeaweedFS on 127.0.0.1",
            "",
            "| contender | median s | MiB/s | ÷ streamed time | CPU-s | source read MiB | disk written / read MiB | "
            "S3 up / down MiB | S3 requests |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, s in summary.items():
            b = Counter(s["bytes"])
            ratio = s["median_seconds"] / base["median_seconds"]
            lines.append(
                f"| {name} | {s['median_seconds']:.1f} | {s['median_mib_per_s']:.0f} | {ratio:.2f} | "
                f"{s['median_cpu_s']:.1f} | {b['source_read'] / MiB:.0f} | "
                f"{b['disk_write'] / MiB:.0f} / {b['disk_read'] / MiB:.0f} | "
                f"{b['s3_up'] / MiB:.0f} / {b['s3_down'] / MiB:.0f} | {s['request_count']} |"
            )
        bench_report.write(
            args.out,
            report,
            lines,
            {n: summary[n]["median_seconds"] for n in summary},
            title=f"{args.size_mib} MiB: streamed or staged (lower is better)",
            ylabel="median seconds",
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
