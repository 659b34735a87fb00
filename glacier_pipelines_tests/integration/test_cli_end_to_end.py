"""The console script end to end against moto in server mode: submit, process, report, responses."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from glacier_pipelines.emulator import moto_server
from glacier_pipelines_tests.conftest import image_bytes

pytestmark = [pytest.mark.slow, pytest.mark.integration]
SCRIPT = str(Path(sys.executable).with_name("glacier-pipelines"))


@pytest.fixture(scope="module")
def endpoint():
    with moto_server() as url:
        yield url


def _cli(env, *args, check=True):
    proc = subprocess.run([SCRIPT, *args], env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.parametrize("catalog", ["sqlite", "postgresql"])
def test_cli_round_trip(tmp_path, endpoint, catalog, request):
    bucket = f"cli-{catalog}-{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GLACIER_", "AWS_", "DAGSTER_"))}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "GLACIER_HOME": str(tmp_path / "home"),
            "GLACIER_S3_ENDPOINT_URL": endpoint,
            "GLACIER_BUCKET": bucket,
            "GLACIER_SOURCE_ROOTS": str(tmp_path / "src"),
            "GLACIER_PART_SIZE_MB": "5",
            "GLACIER_MULTIPART_THRESHOLD_MB": "5",
        }
    )
    if catalog == "postgresql":
        env["GLACIER_CATALOG_URL"] = request.getfixturevalue("postgres_url")
    boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    ).create_bucket(Bucket=bucket)
    src = tmp_path / "src"
    src.mkdir()
    png = image_bytes("PNG", (12, 34))
    big = os.urandom(6 * 1024 * 1024)
    (src / "p.png").write_bytes(png)
    (src / "big.bin").write_bytes(big)
    lines = [
        {
            "tenant": "t1",
            "requestId": "png",
            "owner": "o",
            "session": "s",
            "checksum": hashlib.md5(png).hexdigest(),
            "algorithm": "MD5",
            "url": (src / "p.png").as_uri(),
            "destinationDirectory": "img",
            "computeImageSize": True,
        },
        {
            "tenant": "t1",
            "requestId": "big",
            "checksum": hashlib.sha256(big).hexdigest(),
            "algorithm": "SHA-256",
            "url": (src / "big.bin").as_uri(),
            "destinationDirectory": "bin",
        },
        {"tenant": "t2", "requestId": "bad", "checksum": "xyz", "algorithm": "MD5", "url": (src / "p.png").as_uri()},
    ]
    jsonl = tmp_path / "requests.jsonl"
    jsonl.write_text("\n".join(json.dumps(x) for x in lines) + "\nthis line is not json\n")

    submitted = _cli(env, "submit", str(jsonl), check=False)
    assert submitted.returncode == 1
    assert "line 4: not valid JSON" in submitted.stderr and "submitted 3 request(s)" in submitted.stdout

    processed = json.loads(_cli(env, "process", "--json").stdout)
    assert processed["intake"] == {"new": 2, "duplicates": 0, "invalid": 1}
    assert [r["tenant"] for r in processed["runs"]] == ["t1"] and processed["runs"][0]["checksPassed"]

    report = json.loads(_cli(env, "report", "--json").stdout)
    by_id = {r["requestId"]: r for r in report}
    assert set(by_id) == {"png", "big", "bad"}
    required = {
        "requestId",
        "tenant",
        "status",
        "messages",
        "checksum",
        "algorithm",
        "storedFileUrl",
        "fileSizeInBytes",
        "widthInPx",
        "heightInPx",
        "storageClass",
    }
    assert all(required <= set(r) for r in report)
    assert by_id["png"] | {} == by_id["png"] and by_id["png"]["status"] == "SUCCESS"
    assert (by_id["png"]["widthInPx"], by_id["png"]["heightInPx"]) == (12, 34)
    assert by_id["png"]["storedFileUrl"] == f"s3://{bucket}/archive/t1/img/{hashlib.md5(png).hexdigest()}"
    assert by_id["big"]["fileSizeInBytes"] == len(big) and by_id["big"]["widthInPx"] is None
    assert by_id["big"]["storageClass"] == "DEEP_ARCHIVE"
    assert by_id["bad"]["status"] == "INVALID_CONTENT" and "checksum" in by_id["bad"]["messages"][0]

    one_tenant = json.loads(_cli(env, "report", "--tenant", "t2", "--json").stdout)
    assert [r["requestId"] for r in one_tenant] == ["bad"]

    responses = json.loads(_cli(env, "responses", "--json").stdout)
    assert sorted((r["body"]["requestId"], r["body"]["status"]) for r in responses) == [
        ("bad", "INVALID_CONTENT"),
        ("big", "SUCCESS"),
        ("png", "SUCCESS"),
    ]
    assert json.loads(_cli(env, "responses", "--json").stdout) == []

    human = _cli(env, "report").stdout
    assert "png" in human and "12x34" in human

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    key = by_id["big"]["storedFileUrl"].split("/", 3)[3]
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["StorageClass"] == "DEEP_ARCHIVE" and head["ContentLength"] == len(big)
    # Multipart metadata is set before the bytes are read, so it carries the announced checksum.
    assert head["Metadata"] == {"source-algorithm": "SHA-256", "source-checksum": hashlib.sha256(big).hexdigest()}

    # Restore one file back out, then the reports.
    restored = json.loads(
        _cli(
            env,
            "restore",
            "--tenant",
            "t1",
            "--request-id",
            "png",
            "--checksum",
            hashlib.sha256(big).hexdigest(),
            "--days",
            "2",
            "--tier",
            "Standard",
            "--requester",
            "someone@example.org",
            "--json",
        ).stdout
    )
    assert restored["runSuccess"] and [f["status"] for f in restored["files"]] == ["READY", "READY"]
    if catalog == "postgresql":
        return  # what follows reads the same catalog rows again (refusals, reports, lineage): once, on SQLite, is enough
    refused = _cli(
        env,
        "restore",
        "--tenant",
        "t1",
        "--request-id",
        "png",
        "--days",
        "2",
        "--tier",
        "Expedited",
        "--requester",
        "someone@example.org",
        "--json",
        check=False,
    )
    assert json.loads(refused.stdout)["files"][0]["status"] == "REFUSED"
    invalid = _cli(env, "restore", "--tenant", "t1", "--days", "0", "--requester", "nobody", check=False)
    assert invalid.returncode == 2 and "days" in invalid.stderr and "requester" in invalid.stderr
    restores = json.loads(_cli(env, "report", "--restores", "--json").stdout)
    assert len(restores) == 3
    fields = {
        "restoreId",
        "tenant",
        "requestId",
        "storedFileUrl",
        "tier",
        "days",
        "requester",
        "status",
        "messages",
        "downloadUrl",
        "expiresAt",
        "estimatedCostUsd",
        "restoreRequestedByRun",
        "doneByRun",
    }  # which run started and delivered it (#21)
    assert all(set(r) == fields for r in restores)
    ready = [r for r in restores if r["status"] == "READY"]
    assert {r["requestId"] for r in ready} == {"png", "big"} and all(r["downloadUrl"] and r["estimatedCostUsd"] > 0 for r in ready)
    downloaded = __import__("requests").get(next(r["downloadUrl"] for r in ready if r["requestId"] == "big"), timeout=30)
    assert downloaded.status_code == 200 and hashlib.sha256(downloaded.content).hexdigest() == hashlib.sha256(big).hexdigest()
    costs = json.loads(_cli(env, "report", "--costs", "--json").stdout)
    archive_row = next(c for c in costs if c["kind"].startswith("archive"))
    assert archive_row["tenant"] == "t1" and archive_row["objects"] == 2 and archive_row["usd"] > 0
    assert {c["tier"] for c in costs if c["kind"].startswith("restore")} == {"Standard"}

    # The runs are in the Dagster instance under GLACIER_HOME: lineage survives the CLI process.
    dagster_home = tmp_path / "home" / "dagster"
    assert (dagster_home / "dagster.yaml").exists()
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import dagster as dg; i = dg.DagsterInstance.get(); "
            "print(len(i.get_runs()), i.get_latest_materialization_event(dg.AssetKey('glacier_objects')).dagster_event.partition)",
        ],
        env={**env, "DAGSTER_HOME": str(dagster_home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.stdout.split() == ["3", "t1"], probe.stderr  # one archive run, two restore runs


@pytest.mark.slow
def test_demo_archives_everything_in_the_storage_class(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GLACIER_", "AWS_", "DAGSTER_"))}
    env["GLACIER_HOME"] = str(tmp_path / "home")
    proc = subprocess.run([SCRIPT, "demo", "--json"], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["objectsInStorageClass"] and summary["checksPassed"]
    assert summary["statuses"] == {"SUCCESS": 10, "ERROR": 1, "INVALID_CONTENT": 1}
    assert "tenant lab: run" in proc.stderr  # progress is shown
    assert summary["restore"]["statuses"] == ["READY"] and summary["restore"]["runSuccess"]


def test_vault_migrate_copies_every_archive(tmp_path, endpoint):
    """`glacier-pipelines vault migrate --wait --json` against the vault double and moto in server mode."""
    import base64

    from botocore.utils import calculate_tree_hash

    from glacier_pipelines_tests.vault_double import VaultEmulator

    bucket = f"vault-cli-{os.getpid()}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=bucket)
    with VaultEmulator(job_delay_seconds=1.0) as emulator:
        emulator.create_vault("legacy")
        payloads = {"photos/cat.jpg": os.urandom(3 * 1024 * 1024 + 7), "notes.txt": b"hello vault", "": b""}
        for name, data in payloads.items():
            description = f"<m><v>4</v><p>{base64.b64encode(name.encode()).decode()}</p><lm>20200101T000000Z</lm></m>" if name else ""
            emulator.add_archive("legacy", data, description=description)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GLACIER_", "AWS_", "DAGSTER_"))}
        env.update(
            {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
                "GLACIER_HOME": str(tmp_path / "home"),
                "GLACIER_S3_ENDPOINT_URL": endpoint,
                "GLACIER_BUCKET": bucket,
                "GLACIER_VAULT_ENDPOINT_URL": emulator.endpoint_url,
                "GLACIER_STORAGE_CLASS": "STANDARD",
            }
        )
        proc = _cli(env, "vault", "migrate", "--vault", "legacy", "--wait", "--poll-seconds", "1", "--timeout-hours", "0.05", "--json")
        report = json.loads(proc.stdout)
        assert emulator.modifications == 0
    assert sorted(r["status"] for r in report) == ["DONE"] * 3
    by_key = {r["destinationKey"]: r for r in report}
    assert "vaults/legacy/photos/cat.jpg" in by_key and "vaults/legacy/notes.txt" in by_key
    assert any(k.startswith("vaults/legacy/00undefined/") for k in by_key)
    body = s3.get_object(Bucket=bucket, Key="vaults/legacy/photos/cat.jpg")["Body"].read()
    assert calculate_tree_hash(io.BytesIO(body)) == calculate_tree_hash(io.BytesIO(payloads["photos/cat.jpg"]))
