"""The Glacier vault test double is faithful: checked through the real boto3 Glacier client over HTTP.

The reference for "faithful" is the Amazon S3 Glacier Developer Guide (API 2012-06-01): Initiate Job,
Describe Job, List Jobs, Get Job Output, Error Responses, and "Receiving Checksums When Downloading
Data" (tree-hash alignment). Tree hashes are checked against botocore's own ``calculate_tree_hash``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import time
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.utils import calculate_tree_hash

from glacier_pipelines_tests.vault_double import (
    MiB,
    VaultEmulator,
    chunk_hashes,
    combine_tree_hashes,
    is_tree_hash_aligned,
    tree_hash,
)

VAULT = "legacy-vault"


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def th(data: bytes) -> str:
    """botocore's tree hash: the independent reference the double is checked against."""
    return calculate_tree_hash(io.BytesIO(data))


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return excinfo.value.response["Error"]["Code"]


def http_status(excinfo: pytest.ExceptionInfo[ClientError]) -> int:
    return excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def emulator():
    with VaultEmulator() as emu:
        emu.create_vault(VAULT)
        yield emu


@pytest.fixture
def glacier(emulator: VaultEmulator):
    return boto3.client(
        "glacier",
        endpoint_url=emulator.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        # proxies={}: never route 127.0.0.1 through an HTTP(S)_PROXY from the environment.
        config=Config(proxies={}, retries={"mode": "standard", "total_max_attempts": 3}),
    )


def retrieve(glacier, archive_id: str, **params) -> str:
    return glacier.initiate_job(vaultName=VAULT, jobParameters={"Type": "archive-retrieval", "ArchiveId": archive_id, **params})["jobId"]


def output(glacier, job_id: str, byte_range: str | None = None) -> tuple[dict, bytes]:
    kwargs = {"range": byte_range} if byte_range is not None else {}
    response = glacier.get_job_output(vaultName=VAULT, jobId=job_id, **kwargs)
    return response, response["body"].read()


# ---- tree hash helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, MiB - 1, MiB, MiB + 1, 3 * MiB, 5 * MiB + 3])
def test_tree_hash_matches_botocore(size: int) -> None:
    data = payload(size, seed=size)
    assert tree_hash(data) == th(data)


def test_tree_hash_alignment_follows_the_developer_guide() -> None:
    # The guide's example: of two 2 MB ranges of a 6.5 MB archive, only the one on a tree node is aligned.
    size = 6 * MiB + MiB // 2
    assert is_tree_hash_aligned(2 * MiB, 4 * MiB - 1, size)
    assert not is_tree_hash_aligned(1 * MiB, 3 * MiB - 1, size)
    assert is_tree_hash_aligned(0, size - 1, size)  # the whole archive is the root
    assert is_tree_hash_aligned(3 * MiB, 4 * MiB - 1, size)  # any single chunk is a leaf
    assert is_tree_hash_aligned(4 * MiB, size - 1, size)  # the 2.5 MiB tail is the node over chunks 4..6
    assert is_tree_hash_aligned(6 * MiB, size - 1, size)  # the short last chunk is a leaf
    assert is_tree_hash_aligned(4 * MiB, 6 * MiB - 1, size)  # chunks 4 and 5: a level-1 node
    assert not is_tree_hash_aligned(0, 3 * MiB - 1, size)  # three chunks from 0 are no node
    assert not is_tree_hash_aligned(1, MiB, size)  # not even megabyte aligned
    assert is_tree_hash_aligned(0, -1, 0)  # the empty archive's whole range

    # Structural definition checked by brute force: aligned exactly when the range's own tree hash is a
    # node of the archive tree (random data, so no accidental hash equality).
    data = payload(size, seed=7)
    leaves = chunk_hashes(data)
    nodes, level = set(leaves), leaves
    while len(level) > 1:
        level = [combine_tree_hashes(level[i : i + 2]) for i in range(0, len(level), 2)]
        nodes.update(level)
    n = len(leaves)
    for p in range(n):
        for q in range(p + 1, n + 1):
            start, end = p * MiB, min(q * MiB, size) - 1
            assert is_tree_hash_aligned(start, end, size) == (combine_tree_hashes(leaves[p:q]) in nodes), (p, q)


# ---- inventory ------------------------------------------------------------------------------------


def seed_inventory(emulator: VaultEmulator) -> list[dict]:
    specs = [
        (payload(10, 1), "plain", "2012-05-15T17:19:46.700Z"),
        (payload(MiB + 5, 2), 'comma, and "quotes"', "2013-03-20T17:03:43.221Z"),
        (b"", "", "2014-01-01T00:00:00.000Z"),
    ]
    seeded = []
    for data, description, created in specs:
        archive_id = emulator.add_archive(VAULT, data, description, creation_date=created)
        seeded.append(
            {
                "ArchiveId": archive_id,
                "ArchiveDescription": description,
                "CreationDate": created,
                "Size": len(data),
                "SHA256TreeHash": th(data),
            }
        )
    return seeded


def test_inventory_json(emulator: VaultEmulator, glacier) -> None:
    seeded = seed_inventory(emulator)
    job_id = glacier.initiate_job(vaultName=VAULT, jobParameters={"Type": "inventory-retrieval", "Format": "JSON"})["jobId"]
    response, body = output(glacier, job_id)

    assert response["status"] == 200
    assert response["contentType"] == "application/json"
    assert "checksum" not in response  # inventory output never carries a tree hash
    document = json.loads(body)
    assert document["VaultARN"] == f"arn:aws:glacier:us-east-1:123456789012:vaults/{VAULT}"
    assert dt.datetime.fromisoformat(document["InventoryDate"].replace("Z", "+00:00")).tzinfo is not None
    assert document["ArchiveList"] == seeded
    assert all(len(a["ArchiveId"]) == 138 for a in document["ArchiveList"])

    job = glacier.describe_job(vaultName=VAULT, jobId=job_id)
    assert job["Action"] == "InventoryRetrieval"
    assert job["StatusCode"] == "Succeeded" and job["Completed"] is True
    assert job["InventorySizeInBytes"] == len(body)
    assert job["InventoryRetrievalParameters"]["Format"] == "JSON"
    assert "ArchiveId" not in job and "SHA256TreeHash" not in job  # null for inventory jobs


def test_inventory_csv(emulator: VaultEmulator, glacier) -> None:
    seeded = seed_inventory(emulator)
    job_id = glacier.initiate_job(vaultName=VAULT, jobParameters={"Type": "inventory-retrieval", "Format": "CSV"})["jobId"]
    response, body = output(glacier, job_id)

    assert response["contentType"] == "text/csv"
    text = body.decode("ascii")
    # Glacier's quoting: description in double quotes, an inner double quote escaped by a backslash.
    assert '"comma, and \\"quotes\\""' in text
    rows = list(csv.reader(io.StringIO(text), escapechar="\\", doublequote=False))
    assert rows[0] == ["ArchiveId", "ArchiveDescription", "CreationDate", "Size", "SHA256TreeHash"]
    parsed = [dict(zip(rows[0], row)) for row in rows[1:]]
    assert parsed == [{**item, "Size": str(item["Size"])} for item in seeded]
    assert glacier.describe_job(vaultName=VAULT, jobId=job_id)["InventoryRetrievalParameters"]["Format"] == "CSV"


def test_inventory_limit_and_marker_paginate(emulator: VaultEmulator, glacier) -> None:
    ids = [emulator.add_archive(VAULT, payload(3, i), f"a{i}") for i in range(5)]
    seen, marker = [], None
    while True:
        params = {"Limit": "2", **({"Marker": marker} if marker else {})}
        job_parameters = {"Type": "inventory-retrieval", "InventoryRetrievalParameters": params}
        job_id = glacier.initiate_job(vaultName=VAULT, jobParameters=job_parameters)["jobId"]
        seen += [a["ArchiveId"] for a in json.loads(output(glacier, job_id)[1])["ArchiveList"]]
        marker = glacier.describe_job(vaultName=VAULT, jobId=job_id)["InventoryRetrievalParameters"].get("Marker")
        if not marker:
            break
    assert seen == ids


# ---- archive retrieval ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, MiB, 5 * MiB + 3], ids=["0B", "1B", "1MiB", "5MiB+3"])
def test_whole_archive_retrieval(emulator: VaultEmulator, glacier, size: int) -> None:
    data = payload(size, seed=size)
    archive_id = emulator.add_archive(VAULT, data, "whole")
    job_id = retrieve(glacier, archive_id)

    job = glacier.describe_job(vaultName=VAULT, jobId=job_id)
    assert job["Action"] == "ArchiveRetrieval"
    assert job["ArchiveId"] == archive_id
    assert job["ArchiveSizeInBytes"] == size
    assert job["ArchiveSHA256TreeHash"] == th(data)
    assert job["SHA256TreeHash"] == th(data)  # whole archive: the same as ArchiveSHA256TreeHash
    assert job["RetrievalByteRange"] == f"0-{size - 1}"
    assert job["Tier"] == "Standard"  # the documented default

    response, body = output(glacier, job_id)
    assert response["status"] == 200
    assert body == data
    assert response["checksum"] == th(data) == th(body)
    assert response["contentType"] == "application/octet-stream"
    assert response["acceptRanges"] == "bytes"
    assert response["archiveDescription"] == "whole"


def test_aligned_output_ranges_carry_the_tree_hash_of_the_returned_bytes(emulator: VaultEmulator, glacier) -> None:
    data = payload(9 * MiB + 3, seed=9)
    archive_id = emulator.add_archive(VAULT, data)
    job_id = retrieve(glacier, archive_id)
    ranges = [(0, 4 * MiB - 1), (4 * MiB, 8 * MiB - 1), (8 * MiB, len(data) - 1)]  # 4 MiB, 4 MiB, short tail

    checksums = []
    for first, last in ranges:
        response, body = output(glacier, job_id, f"bytes={first}-{last}")
        assert response["status"] == 206
        assert response["contentRange"] == f"bytes {first}-{last}/{len(data)}"
        assert body == data[first : last + 1]
        assert response["checksum"] == th(body)
        checksums.append(bytes.fromhex(response["checksum"]))
    # The guide's recipe: the tree hash over the per-range checksums is the archive's tree hash.
    assert combine_tree_hashes(checksums).hex() == th(data)
    assert [r[2]["range"] for r in emulator.requests if r[1].endswith("/output")] == [f"bytes={a}-{b}" for a, b in ranges]


def test_aligned_ranges_of_a_5mib_plus_3_archive(emulator: VaultEmulator, glacier) -> None:
    data = payload(5 * MiB + 3, seed=5)
    job_id = retrieve(glacier, emulator.add_archive(VAULT, data))
    for first, last in [(0, 4 * MiB - 1), (4 * MiB, len(data) - 1), (5 * MiB, len(data) - 1), (2 * MiB, 3 * MiB - 1)]:
        response, body = output(glacier, job_id, f"bytes={first}-{last}")
        assert body == data[first : last + 1]
        assert response["checksum"] == th(body)
    response, body = output(glacier, job_id, "bytes=4194304-")  # open-ended range to the end
    assert response["contentRange"] == f"bytes 4194304-{len(data) - 1}/{len(data)}"
    assert response["checksum"] == th(body) == th(data[4 * MiB :])


@pytest.mark.parametrize(
    "byte_range",
    ["bytes=1-1048576", "bytes=0-1023", "bytes=1048576-3145727", "bytes=0-3145727", "bytes=3145728-5242879"],
    ids=["offset-by-one", "sub-chunk", "two-chunks-off-node", "three-chunks", "chunks-3-and-4"],
)
def test_unaligned_output_ranges_have_no_checksum(emulator: VaultEmulator, glacier, byte_range: str) -> None:
    data = payload(5 * MiB + 3, seed=6)
    job_id = retrieve(glacier, emulator.add_archive(VAULT, data))
    response, body = output(glacier, job_id, byte_range)
    first, last = (int(x) for x in byte_range.removeprefix("bytes=").split("-"))
    assert response["status"] == 206
    assert body == data[first : last + 1]
    assert "checksum" not in response


def test_retrieval_byte_range(emulator: VaultEmulator, glacier) -> None:
    data = payload(6 * MiB + MiB // 2, seed=65)
    archive_id = emulator.add_archive(VAULT, data)

    # Tree-hash aligned retrieval range: DescribeJob and the output carry the range's tree hash, and
    # an aligned sub-range of the output (relative to the output) does too.
    aligned = retrieve(glacier, archive_id, RetrievalByteRange=f"{2 * MiB}-{4 * MiB - 1}")
    job = glacier.describe_job(vaultName=VAULT, jobId=aligned)
    assert job["RetrievalByteRange"] == f"{2 * MiB}-{4 * MiB - 1}"
    assert job["SHA256TreeHash"] == th(data[2 * MiB : 4 * MiB])
    assert job["ArchiveSHA256TreeHash"] == th(data)
    response, body = output(glacier, aligned)
    assert body == data[2 * MiB : 4 * MiB] and response["checksum"] == th(body)
    response, body = output(glacier, aligned, f"bytes={MiB}-{2 * MiB - 1}")
    assert body == data[3 * MiB : 4 * MiB] and response["checksum"] == th(body)
    assert response["contentRange"] == f"bytes {MiB}-{2 * MiB - 1}/{2 * MiB}"

    # Megabyte aligned but not tree-hash aligned: data, but no checksum anywhere.
    unaligned = retrieve(glacier, archive_id, RetrievalByteRange=f"{MiB}-{3 * MiB - 1}")
    assert "SHA256TreeHash" not in glacier.describe_job(vaultName=VAULT, jobId=unaligned)
    response, body = output(glacier, unaligned)
    assert body == data[MiB : 3 * MiB] and "checksum" not in response
    response, body = output(glacier, unaligned, f"bytes=0-{MiB - 1}")  # a leaf, but the retrieval range is off-tree
    assert body == data[MiB : 2 * MiB] and "checksum" not in response

    # The tail up to the end of the archive is allowed (end = size - 1).
    tail = retrieve(glacier, archive_id, RetrievalByteRange=f"{6 * MiB}-{len(data) - 1}")
    response, body = output(glacier, tail)
    assert body == data[6 * MiB :] and response["checksum"] == th(body)

    # Not megabyte aligned: 400 InvalidParameterValueException.
    for bad in ["1-1048576", f"0-{MiB}", f"0-{len(data)}"]:
        with pytest.raises(ClientError) as excinfo:
            retrieve(glacier, archive_id, RetrievalByteRange=bad)
        assert error_code(excinfo) == "InvalidParameterValueException" and http_status(excinfo) == 400


def test_tier_is_recorded(emulator: VaultEmulator, glacier) -> None:
    archive_id = emulator.add_archive(VAULT, b"tiers")
    job_ids = {tier: retrieve(glacier, archive_id, Tier=tier) for tier in ("Bulk", "Standard", "Expedited")}
    default = retrieve(glacier, archive_id)
    for tier, job_id in job_ids.items():
        assert emulator.jobs[job_id]["Tier"] == tier
        assert glacier.describe_job(vaultName=VAULT, jobId=job_id)["Tier"] == tier
    assert emulator.jobs[default]["Tier"] == "Standard"
    with pytest.raises(ClientError) as excinfo:
        retrieve(glacier, archive_id, Tier="Glacial")
    assert error_code(excinfo) == "InvalidParameterValueException"


# ---- time, expiry, faults ------------------------------------------------------------------------


def test_job_delay_then_success(emulator: VaultEmulator, glacier) -> None:
    data = payload(MiB + 1, seed=11)
    archive_id = emulator.add_archive(VAULT, data)
    emulator.job_delay_seconds = 2.0  # wide enough that a loaded machine still sees the job in progress
    job_id = retrieve(glacier, archive_id)

    job = glacier.describe_job(vaultName=VAULT, jobId=job_id)
    assert job["StatusCode"] == "InProgress" and job["Completed"] is False
    assert job["StatusMessage"] == "Operation in progress."
    assert "CompletionDate" not in job and "SHA256TreeHash" not in job  # null while in progress
    with pytest.raises(ClientError) as excinfo:
        glacier.get_job_output(vaultName=VAULT, jobId=job_id)
    assert error_code(excinfo) == "InvalidParameterValueException" and http_status(excinfo) == 400
    assert excinfo.value.response["Error"]["Message"] == f"The job is not currently available for download: {job_id}"
    assert [j["JobId"] for j in glacier.list_jobs(vaultName=VAULT, completed="false")["JobList"]] == [job_id]
    assert glacier.list_jobs(vaultName=VAULT, completed="true")["JobList"] == []

    deadline = time.monotonic() + 10
    while glacier.describe_job(vaultName=VAULT, jobId=job_id)["StatusCode"] == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    job = glacier.describe_job(vaultName=VAULT, jobId=job_id)
    assert job["StatusCode"] == "Succeeded" and job["Completed"] is True and job["SHA256TreeHash"] == th(data)
    assert [j["JobId"] for j in glacier.list_jobs(vaultName=VAULT, statuscode="Succeeded")["JobList"]] == [job_id]
    response, body = output(glacier, job_id)
    assert body == data and response["checksum"] == th(data)


def test_complete_jobs_and_fail_job(emulator: VaultEmulator, glacier) -> None:
    archive_id = emulator.add_archive(VAULT, b"slow")
    emulator.job_delay_seconds = 3600
    done, failed = retrieve(glacier, archive_id), retrieve(glacier, archive_id)
    emulator.fail_job(failed, "Archive is unavailable.")
    emulator.complete_jobs()
    assert glacier.describe_job(vaultName=VAULT, jobId=done)["StatusCode"] == "Succeeded"
    job = glacier.describe_job(vaultName=VAULT, jobId=failed)
    assert (job["StatusCode"], job["StatusMessage"], job["Completed"]) == ("Failed", "Archive is unavailable.", True)
    assert output(glacier, done)[1] == b"slow"
    with pytest.raises(ClientError) as excinfo:
        glacier.get_job_output(vaultName=VAULT, jobId=failed)
    assert error_code(excinfo) == "InvalidParameterValueException"


def test_expired_jobs_are_gone(emulator: VaultEmulator, glacier) -> None:
    archive_id = emulator.add_archive(VAULT, b"gone soon")
    job_id = retrieve(glacier, archive_id)
    assert output(glacier, job_id)[1] == b"gone soon"
    emulator.expire_job(job_id)
    with pytest.raises(glacier.exceptions.ResourceNotFoundException) as excinfo:
        glacier.get_job_output(vaultName=VAULT, jobId=job_id)
    assert error_code(excinfo) == "ResourceNotFoundException" and http_status(excinfo) == 404
    assert excinfo.value.response["Error"]["Message"] == f"The job ID was not found: {job_id}"
    with pytest.raises(glacier.exceptions.ResourceNotFoundException):
        glacier.describe_job(vaultName=VAULT, jobId=job_id)
    assert glacier.list_jobs(vaultName=VAULT)["JobList"] == []
    assert emulator.jobs[job_id]["_expired"] is True

    # And by the clock: output_ttl_seconds after completion.
    emulator.output_ttl_seconds = 1.0  # wide enough for a loaded machine
    job_id = retrieve(glacier, archive_id)
    assert output(glacier, job_id)[1] == b"gone soon"
    time.sleep(1.2)
    with pytest.raises(glacier.exceptions.ResourceNotFoundException):
        glacier.get_job_output(vaultName=VAULT, jobId=job_id)


def test_corrupt_range_is_detected_by_a_verifying_client(emulator: VaultEmulator, glacier) -> None:
    data = payload(3 * MiB + 7, seed=13)
    archive_id = emulator.add_archive(VAULT, data)
    emulator.corrupt_range(archive_id, offset=MiB + 5, length=3)
    job_id = retrieve(glacier, archive_id)

    response, body = output(glacier, job_id)
    assert len(body) == len(data)
    assert [i for i in range(len(data)) if body[i] != data[i]] == [MiB + 5, MiB + 6, MiB + 7]
    assert response["checksum"] == th(data) != th(body)  # header reports the original

    response, body = output(glacier, job_id, f"bytes={MiB}-{2 * MiB - 1}")  # the damaged chunk
    assert response["checksum"] == th(data[MiB : 2 * MiB]) != th(body)
    response, body = output(glacier, job_id, f"bytes={2 * MiB}-{len(data) - 1}")  # an intact range
    assert response["checksum"] == th(body) == th(data[2 * MiB :])
    assert glacier.describe_job(vaultName=VAULT, jobId=job_id)["SHA256TreeHash"] == th(data)


def test_throttled_requests_are_retried_by_botocore(emulator: VaultEmulator, glacier) -> None:
    job_id = retrieve(glacier, emulator.add_archive(VAULT, b"busy"))
    emulator.requests.clear()
    emulator.throttle(2)
    job = glacier.describe_job(vaultName=VAULT, jobId=job_id)
    assert job["StatusCode"] == "Succeeded"
    assert job["ResponseMetadata"]["RetryAttempts"] == 2
    assert [(method, path) for method, path, _ in emulator.requests] == [("GET", f"/-/vaults/{VAULT}/jobs/{job_id}")] * 3
    # botocore numbers its attempts in the amz-sdk-request header: "attempt=2; max=3" (plus a ttl on retries).
    sdk_request = [dict(part.strip().split("=") for part in headers["amz-sdk-request"].split(";")) for _, _, headers in emulator.requests]
    attempts = [fields["attempt"] for fields in sdk_request]
    assert attempts == ["1", "2", "3"]

    # Throttled on every attempt: the ThrottlingException reaches the caller (one retry keeps this quick).
    impatient = boto3.client(
        "glacier",
        endpoint_url=emulator.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(proxies={}, retries={"mode": "standard", "total_max_attempts": 2}),
    )
    emulator.requests.clear()
    emulator.throttle(2)
    with pytest.raises(ClientError) as excinfo:
        impatient.describe_job(vaultName=VAULT, jobId=job_id)
    assert error_code(excinfo) == "ThrottlingException" and http_status(excinfo) == 400
    assert len(emulator.requests) == 2


# ---- read-only source, errors, protocol -----------------------------------------------------------


def test_writes_are_refused_and_counted(emulator: VaultEmulator, glacier) -> None:
    archive_id = emulator.add_archive(VAULT, b"keep me", "precious")
    with pytest.raises(ClientError) as excinfo:
        glacier.delete_archive(vaultName=VAULT, archiveId=archive_id)
    assert error_code(excinfo) == "AccessDeniedException" and http_status(excinfo) == 403
    assert emulator.modifications == 1

    with pytest.raises(ClientError) as excinfo:
        glacier.delete_vault(vaultName=VAULT)
    assert error_code(excinfo) == "AccessDeniedException"
    with pytest.raises(ClientError) as excinfo:
        glacier.upload_archive(vaultName=VAULT, body=b"intruder")
    assert error_code(excinfo) == "AccessDeniedException"
    assert emulator.modifications == 3

    job_id = glacier.initiate_job(vaultName=VAULT, jobParameters={"Type": "inventory-retrieval"})["jobId"]
    assert [a["ArchiveId"] for a in json.loads(output(glacier, job_id)[1])["ArchiveList"]] == [archive_id]
    assert emulator.modifications == 3  # initiating jobs is not a modification


def test_not_found_and_invalid_parameters(emulator: VaultEmulator, glacier) -> None:
    with pytest.raises(glacier.exceptions.ResourceNotFoundException) as excinfo:
        glacier.list_jobs(vaultName="no-such-vault")
    message = excinfo.value.response["Error"]["Message"]
    assert message == "Vault not found for ARN: arn:aws:glacier:us-east-1:123456789012:vaults/no-such-vault"
    with pytest.raises(glacier.exceptions.ResourceNotFoundException):
        glacier.describe_job(vaultName=VAULT, jobId="HkF9p6o7yjhFx-K3CGl6fuSm6VzW9T7esGQfco8nUXVYwS0jlb5gq1JZ55yHgt5vP54ZShjoQzQVVbad")
    with pytest.raises(glacier.exceptions.ResourceNotFoundException):
        retrieve(glacier, "not-an-archive")
    with pytest.raises(glacier.exceptions.InvalidParameterValueException) as excinfo:
        glacier.list_jobs(vaultName=VAULT, statuscode="finished")
    assert excinfo.value.response["Error"]["Message"] == "The job status code is not valid: finished"
    with pytest.raises(glacier.exceptions.MissingParameterValueException):
        glacier.initiate_job(vaultName=VAULT, jobParameters={"Type": "archive-retrieval"})
    with pytest.raises(glacier.exceptions.InvalidParameterValueException):
        glacier.initiate_job(vaultName=VAULT, jobParameters={"Type": "inventory-retrieval", "Format": "XML"})


def test_account_ids_list_jobs_paging_and_vaults(emulator: VaultEmulator, glacier) -> None:
    archive_id = emulator.add_archive(VAULT, b"x")
    job_parameters = {"Type": "archive-retrieval", "ArchiveId": archive_id}
    response = glacier.initiate_job(accountId="123456789012", vaultName=VAULT, jobParameters=job_parameters)
    assert response["location"] == f"/123456789012/vaults/{VAULT}/jobs/{response['jobId']}"
    assert len(response["jobId"]) == 92
    job_ids = [response["jobId"]] + [retrieve(glacier, archive_id) for _ in range(4)]

    listed, marker = [], None
    while True:
        page = glacier.list_jobs(vaultName=VAULT, limit="2", **({"marker": marker} if marker else {}))
        assert len(page["JobList"]) <= 2
        listed += [j["JobId"] for j in page["JobList"]]
        marker = page.get("Marker")
        if not marker:
            break
    assert listed == job_ids

    emulator.create_vault("another")
    assert [v["VaultName"] for v in glacier.list_vaults()["VaultList"]] == ["another", VAULT]
    vault = glacier.describe_vault(vaultName=VAULT)
    assert (vault["NumberOfArchives"], vault["SizeInBytes"]) == (1, 1)
    assert "NumberOfArchives" not in glacier.describe_vault(vaultName="another")  # null before any inventory


def test_output_range_edge_cases(emulator: VaultEmulator, glacier) -> None:
    data = payload(2 * MiB, seed=2)
    job_id = retrieve(glacier, emulator.add_archive(VAULT, data))
    response, body = output(glacier, job_id, "bytes=-10")  # suffix range
    assert body == data[-10:] and "checksum" not in response
    response, body = output(glacier, job_id, f"bytes=0-{10 * MiB}")  # clipped to the output
    assert body == data and response["status"] == 206 and response["checksum"] == th(data)
    with pytest.raises(ClientError) as excinfo:
        glacier.get_job_output(vaultName=VAULT, jobId=job_id, range=f"bytes={2 * MiB}-")
    assert http_status(excinfo) == 416


def test_unsigned_requests_are_rejected(emulator: VaultEmulator) -> None:
    request = urllib.request.Request(f"{emulator.endpoint_url}/-/vaults/{VAULT}/jobs", headers={"x-amz-glacier-version": "2012-06-01"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        opener.open(request, timeout=5)
    assert excinfo.value.code == 400
    assert json.loads(excinfo.value.read()) == {
        "code": "MissingAuthenticationTokenException",
        "message": "Missing Authentication Token",
        "type": "Client",
    }
