"""``glacier-pipelines demo``: the main job on the embedded default, end to end, on this machine only.

Starts moto in server mode as the S3 Glacier emulator and a loopback HTTP server as a
second kind of source, writes sample files (images included), submits requests for two
tenants (with one bad checksum and one malformed request, to show how they end), processes
them through Dagster and checks that every object sits in the chosen storage class.

It calls the same functions as the console script (runs/: submit, one pass, restore), never the CLI itself,
so the CLI's ``demo`` command can import this module without a cycle.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

from glacier_pipelines.core.constants import MiB


def _sample_files(root: Path) -> dict[str, bytes]:
    from PIL import Image

    files: dict[str, bytes] = {}
    for name, fmt, size, color in (
        ("scan.png", "PNG", (640, 480), (30, 90, 160)),
        ("photo.jpg", "JPEG", (1024, 768), (200, 120, 40)),
        ("icon.gif", "GIF", (37, 23), (0, 200, 0)),
        ("plate.tiff", "TIFF", (300, 200), (90, 90, 90)),
    ):
        buf = io.BytesIO()
        Image.new("RGB", size, color).save(buf, fmt)
        files[name] = buf.getvalue()
    files["notes.txt"] = b"Field notes, 1923 expedition.\n" * 200
    files["table.csv"] = "id,species,count\n".encode() + b"".join(f"{i},sp{i % 17},{i * 7 % 100}\n".encode() for i in range(2000))
    files["survey.bin"] = os.urandom(40 * MiB)  # above the multipart threshold: streamed in parts
    for name, data in files.items():
        (root / name).write_bytes(data)
    return files


def _serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(directory), **kw)  # noqa: E731
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a, **kw: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _requests(files: dict[str, bytes], src: Path, http_base: str) -> list[dict[str, Any]]:
    md5 = lambda d: hashlib.md5(d).hexdigest()  # noqa: E731
    sha = lambda d: hashlib.sha256(d).hexdigest()  # noqa: E731
    out = []
    for i, (name, data) in enumerate(sorted(files.items())):
        image = name.endswith((".png", ".jpg", ".gif", ".tiff"))
        out.append(
            {
                "tenant": "lab",
                "requestId": f"lab-{i:03d}",
                "owner": "demo",
                "session": "demo-session",
                "checksum": md5(data),
                "algorithm": "MD5",
                "url": (src / name).as_uri(),
                "destinationDirectory": "images" if image else "data",
                "computeImageSize": image,
            }
        )
    out.append(
        {
            "tenant": "museum",
            "requestId": "museum-http-scan",
            "checksum": sha(files["scan.png"]),
            "algorithm": "SHA-256",
            "url": f"{http_base}/scan.png",
            "destinationDirectory": "collections/2026",
            "computeImageSize": True,
        }
    )
    out.append(
        {
            "tenant": "museum",
            "requestId": "museum-notes",
            "checksum": md5(files["notes.txt"]),
            "algorithm": "MD5",
            "url": f"{http_base}/notes.txt",
            "destinationDirectory": "collections/2026",
        }
    )
    out.append(
        {
            "tenant": "museum",
            "requestId": "museum-notes-again",
            "checksum": md5(files["notes.txt"]),
            "algorithm": "MD5",
            "url": (src / "notes.txt").as_uri(),
            "destinationDirectory": "copies",
        }
    )
    out.append(
        {
            "tenant": "museum",
            "requestId": "museum-bad-checksum",
            "checksum": "0" * 32,
            "algorithm": "MD5",
            "url": (src / "table.csv").as_uri(),
            "destinationDirectory": "collections",
        }
    )
    out.append(
        {
            "tenant": "museum",
            "requestId": "museum-malformed",
            "checksum": "abc",
            "algorithm": "CRC-7",
            "url": (src / "table.csv").as_uri(),
            "destinationDirectory": "../escape",
        }
    )
    return out


def run_demo(as_json: bool = False) -> int:
    import boto3

    from glacier_pipelines.core.objectstore import BucketAdmin, S3Store
    from glacier_pipelines.emulator import moto_server
    from glacier_pipelines.runs.common import print_table
    from glacier_pipelines.runs.process import process
    from glacier_pipelines.runs.requests import restore, submit

    base = Path(os.environ.get("GLACIER_HOME") or ".glacier").resolve()
    home = base / "demo"
    shutil.rmtree(home, ignore_errors=True)  # the emulator starts empty, so the demo catalog does too
    src = home / "sources"
    src.mkdir(parents=True)
    files = _sample_files(src)
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    say(f"demo: {len(files)} sample files written under {src}")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "demo")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "demo")
    storage_class = os.environ.get("GLACIER_STORAGE_CLASS") or "DEEP_ARCHIVE"
    with moto_server() as endpoint:
        server, http_base = _serve(src)
        say(f"demo: S3 Glacier emulator (moto) at {endpoint}; HTTP source at {http_base}")
        os.environ.update(
            {
                "GLACIER_HOME": str(home),
                "GLACIER_S3_ENDPOINT_URL": endpoint,
                "GLACIER_BUCKET": "glacier-demo",
                "GLACIER_STORAGE_CLASS": storage_class,
                "GLACIER_SOURCE_ROOTS": str(src),
                "GLACIER_SOURCE_ALLOWED_NETWORKS": "127.0.0.0/8",
                "GLACIER_REQUEST_TRANSPORT": "embedded",
            }
        )
        os.environ.pop("GLACIER_CATALOG_URL", None)
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        BucketAdmin(s3).create("glacier-demo")
        requests_file = home / "requests.jsonl"
        requests_file.write_text("".join(json.dumps(r) + "\n" for r in _requests(files, src, http_base)))
        sent, errors = submit(str(requests_file))
        say(f"demo: submitted {sent} requests from {requests_file}")
        summary = process(progress=say, mode="in-process")  # its settings live in this process only
        say("demo: asking for scan.png back (Bulk, 1 day) as a researcher would")
        restored = restore("lab", request_ids=["lab-004"], days=1, tier="Bulk", requester="researcher@example.org", note="demo")
        classes = {}
        for r in summary["requests"]:
            if r["storedFileUrl"]:
                bucket, key = r["storedFileUrl"][5:].split("/", 1)
                classes[r["storedFileUrl"]] = S3Store(s3, bucket).head(key).storage_class
        server.shutdown()
    all_in_class = bool(classes) and all(c == storage_class for c in classes.values())
    checks_ok = bool(summary["runs"]) and all(r["checksPassed"] for r in summary["runs"])
    expected = {"museum-bad-checksum": "ERROR", "museum-malformed": "INVALID_CONTENT"}
    as_expected = all(r["status"] == expected.get(r["requestId"], "SUCCESS") for r in summary["requests"])
    restore_ready = [f["status"] for f in restored["files"]] == ["READY"]
    if as_json:
        print(
            json.dumps(
                {
                    **summary,
                    "objectsInStorageClass": all_in_class,
                    "checksPassed": checks_ok,
                    "restore": {k: v for k, v in restored.items() if k != "files"} | {"statuses": [f["status"] for f in restored["files"]]},
                },
                indent=2,
                default=str,
            )
        )
    else:
        print_table(summary["requests"])
        print()
        print(
            f"{len(classes)} objects, all in {storage_class}: {'yes' if all_in_class else 'NO'}; "
            f"checksum_integrity passed in every run: {'yes' if checks_ok else 'NO'}; "
            f"statuses as expected: {'yes' if as_expected else 'NO'} {summary['statuses']}"
        )
        print("The bad checksum and the malformed request end ERROR and INVALID_CONTENT on purpose.")
        [file] = restored["files"]
        print(
            f"Restore {restored['restoreId'][:8]} of {file['storedFileUrl']}: {file['status']}, estimated ${file['estimatedCostUsd']:.6f}, "
            f"restored bytes re-verified; the download link is in `glacier-pipelines report --restores` "
            "(the emulator stops with the demo, so the link dies with it)."
        )
        print(
            f"Lineage and run history: `make ui` (or DAGSTER_HOME={os.environ.get('DAGSTER_HOME')} dagster dev -w workspace.yaml), "
            "then open http://127.0.0.1:3000/asset-groups"
        )
    return 0 if all_in_class and checks_ok and as_expected and restore_ready else 1
