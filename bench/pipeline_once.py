"""One archive pass of one file through the pipeline's steps (fetch over HTTP or from file://, verify, hash, multipart upload, catalog).

Run as a child process by bench/large_file.py so its CPU time and peak RSS are its own.
Usage: pipeline_once.py URL MD5 ENDPOINT BUCKET HOME
"""

import json
import resource
import sys
import time
from datetime import timedelta
from pathlib import Path

import boto3
from botocore.config import Config

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.core.requests import parse_submission
from glacier_pipelines.core.sources import SourcePolicy
from glacier_pipelines.core.transfer import UploadSettings, limit_malloc_arenas
from glacier_pipelines.emulator import SEAWEED_ACCESS_KEY, SEAWEED_SECRET_KEY
from glacier_pipelines.flows import archive as flow

limit_malloc_arenas()  # as the CLI and the Dagster code location do

url, md5, endpoint, bucket, home = sys.argv[1:6]
part_mb = int(sys.argv[6]) if len(sys.argv) > 6 else 16
concurrency = int(sys.argv[7]) if len(sys.argv) > 7 else 4
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id=SEAWEED_ACCESS_KEY,
    aws_secret_access_key=SEAWEED_SECRET_KEY,
    config=Config(
        retries={"mode": "standard", "max_attempts": 8},
        max_pool_connections=concurrency * 2,
        s3={"addressing_style": "path", "payload_signing_enabled": False},
    ),
)  # as ArchiveStoreResource
catalog = Catalog(f"sqlite:///{home}/catalog.sqlite")
setup = flow.ArchiveSetup(
    catalog=catalog,
    s3=s3,
    upload=UploadSettings(
        bucket=bucket, storage_class="DEEP_ARCHIVE", part_size=part_mb << 20, multipart_threshold=part_mb << 20, max_concurrency=concurrency
    ),
    # file:// from the file's own folder (as the raw peers read it), or HTTP from the loopback server
    sources=SourcePolicy.from_strings(str(Path(url.removeprefix("file://")).parent))
    if url.startswith("file:")
    else SourcePolicy.from_strings("", "127.0.0.0/8"),
    key_prefix="bench",
    staging_dir=Path(home) / "staging",
    stale_upload_age=timedelta(hours=24),
)
request_id = f"r{time.time_ns()}"
catalog.record_request(
    parse_submission({"tenant": "bench", "requestId": request_id, "checksum": md5, "algorithm": "MD5", "url": url}), fallback_id="x"
)
start = time.perf_counter()
batch, _ = flow.claim_batch(catalog, "bench", request_id, 10, lambda run: True)
verified = flow.verify_batch(setup, batch, "bench", request_id)
stored = flow.store_batch(setup, batch, "bench", request_id)
elapsed = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
print(
    json.dumps(
        {
            "seconds": elapsed,
            "stored": stored.stored,
            "failed": verified.failed + stored.failed,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "max_rss_mib": usage.ru_maxrss / 1024,
        }
    )
)
