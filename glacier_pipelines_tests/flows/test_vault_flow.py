"""Vault copies, step by step: the real boto3 Glacier client against the vault double, S3 on in-process moto.

Why both can run at once: moto's ``mock_aws`` patches botocore with a ``before-send`` handler
that answers only requests whose URL matches one of its services' AWS URL patterns
(``glacier.<region>.amazonaws.com``, ``s3.amazonaws.com`` ...). A client created with
``endpoint_url=http://127.0.0.1:PORT`` sends to a URL that matches none of them, so the handler
returns None and botocore sends the request for real, to the double. Clients without an
endpoint (the S3 client here) stay on moto. ``test_moto_leaves_the_emulator_endpoint_alone``
checks exactly that.

Test S3 settings: GLACIER_STORAGE_CLASS=STANDARD, so the copies can be read back with GET
(moto refuses GET on DEEP_ARCHIVE), and moto's smallest multipart part is lowered to 1 MiB
(moto's documented S3_UPLOAD_PART_MIN_SIZE knob, read at import, so patched on the module),
matching ``min_part_size=1 MiB`` below, so 1 MiB chunks keep the data small. Production
keeps S3's 5 MiB minimum and a chunk size of 8 MiB or more.
"""

from __future__ import annotations

import base64
import dataclasses
import random
from datetime import datetime, timedelta, timezone

import boto3
import pandas as pd
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from glacier_pipelines.flows import vault as flow
from glacier_pipelines_tests import vault_double
from glacier_pipelines_tests.conftest import BUCKET, s3_client
from glacier_pipelines_tests.vault_double import MiB, VaultEmulator, tree_hash

VAULT = "myvault"


def payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture
def emulator(monkeypatch):
    """The vault double with an empty vault; every test must leave the vault unmodified.

    TCP_NODELAY on the double's connections (socketserver's own ``disable_nagle_algorithm``
    switch): http.server writes headers and body separately, and Nagle's algorithm against the
    client's delayed ACK otherwise adds about 40 ms to every request on loopback.
    """
    monkeypatch.setattr(vault_double._Handler, "disable_nagle_algorithm", True)
    with VaultEmulator() as emu:
        emu.create_vault(VAULT)
        yield emu
        assert emu.modifications == 0, "a write reached the source vault"


@pytest.fixture
def vault_env(archive, monkeypatch):
    """moto S3 with bucket archive-test (STANDARD class, 1 MiB parts allowed) and a GLACIER_HOME."""
    monkeypatch.setenv("GLACIER_STORAGE_CLASS", "STANDARD")
    monkeypatch.setattr("moto.s3.models.S3_UPLOAD_PART_MIN_SIZE", MiB)
    return archive


class Clock:
    def __init__(self, now: datetime | None = None):
        self.now = now or datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def vault_resource(archive, emulator: VaultEmulator, **fields):
    """The VaultResource of these tests: the double, 1 MiB chunks, no quota."""
    from glacier_pipelines.resources.vault import VaultResource

    config = dict(
        endpoint_url=emulator.endpoint_url,
        chunk_size_mb=1,
        min_part_size_mb=1,
        daily_bytes=0,
        home=str(archive.home),
        concurrency=1,
        max_attempts=3,
    )
    return VaultResource(**{**config, **fields})


def make_setup(archive, emulator: VaultEmulator, resource_fields: dict | None = None, **overrides) -> flow.VaultSetup:
    from glacier_pipelines.resources import resources_from_env

    resources = resources_from_env()
    resource = vault_resource(archive, emulator, **(resource_fields or {}))
    setup = resource.setup(resources["catalog"], resources["archive_store"])
    return dataclasses.replace(setup, **overrides) if overrides else setup


class S3Calls:
    """Counts S3 API calls (with their parameters) and can fail one UploadPart like a dropped connection."""

    def __init__(self, client, fail_part: int | None = None):
        self.calls: list[tuple[str, dict]] = []
        self.fail_part = fail_part
        client.meta.events.register("provide-client-params.s3", self._hook)

    def _hook(self, params, model, **_):
        self.calls.append((model.name, dict(params)))
        if model.name == "UploadPart" and params.get("PartNumber") == self.fail_part:
            self.fail_part = None  # once
            raise EndpointConnectionError(endpoint_url="https://s3.amazonaws.com (simulated crash)")

    def ops(self, name: str) -> list[dict]:
        return [p for op, p in self.calls if op == name]

    def clear(self) -> None:
        self.calls.clear()


def initiated(emulator: VaultEmulator, kind: str = "ArchiveRetrieval") -> list[dict]:
    return [j for j in emulator.jobs.values() if j["Action"] == kind]


def output_ranges(emulator: VaultEmulator, job_id: str) -> list[str]:
    return [h.get("range") for m, path, h in emulator.requests if m == "GET" and path.split("?")[0].endswith(f"/jobs/{job_id}/output")]


def statuses(setup: flow.VaultSetup) -> dict[str, str]:
    return {r["archiveId"]: r["status"] for r in flow.vault_report(setup, VAULT)}


def stored(key: str) -> bytes:
    return s3_client().get_object(Bucket=BUCKET, Key=key)["Body"].read()


def key_of(setup, archive_id: str) -> str:
    return setup.store.archive_by_id(VAULT, archive_id).destination_key


def open_uploads() -> list[dict]:
    return s3_client().list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])


def copy_all(setup) -> None:
    """One pass of the three steps (job delay 0: jobs are ready as soon as they are described)."""
    assert flow.take_inventory(setup, VAULT).state == "loaded"
    flow.request_retrievals(setup, VAULT)
    flow.transfer_archives(setup, VAULT)


# ---- environment ------------------------------------------------------------------------------


def test_moto_leaves_the_emulator_endpoint_alone(vault_env, emulator):
    setup = make_setup(vault_env, emulator)
    before = len(emulator.requests)
    assert [x["VaultName"] for x in setup.glacier.list_vaults()["VaultList"]] == [VAULT]
    assert len(emulator.requests) == before + 1  # it went over HTTP to the double
    moto_glacier = boto3.client("glacier", region_name="us-east-1")  # no endpoint: moto answers
    assert moto_glacier.list_vaults()["VaultList"] == []
    assert len(emulator.requests) == before + 1


def test_the_glacier_client_cannot_write_to_the_vault(vault_env, emulator):
    setup = make_setup(vault_env, emulator)
    archive_id = emulator.add_archive(VAULT, b"keep me", "keep.txt")
    before = len(emulator.requests)
    for call in (
        lambda: setup.glacier.delete_archive(vaultName=VAULT, archiveId=archive_id),
        lambda: setup.glacier.delete_vault(vaultName=VAULT),
        lambda: setup.glacier.upload_archive(vaultName=VAULT, body=b"x"),
    ):
        with pytest.raises(PermissionError, match="read-only"):
            call()
    assert len(emulator.requests) == before  # refused before anything was sent


def test_chunk_sizes_are_powers_of_two_mib_and_respect_s3_part_limits(vault_env, emulator):
    assert flow.chunk_size_for(0, 64 * MiB) == MiB
    assert flow.chunk_size_for(3 * MiB, 64 * MiB) == 4 * MiB  # capped at what covers the archive
    assert flow.chunk_size_for(10**9, 64 * MiB) == 64 * MiB
    assert flow.chunk_size_for(5 * 1024**4, 64 * MiB) == 1024 * MiB  # 5 TiB in 5,120 parts of 1 GiB
    assert flow.chunk_size_for(10**12, 100 * MiB) == 128 * MiB  # 100 MiB rounds to 64 MiB, grown to fit 10,000 parts
    with pytest.raises(ValueError, match="smallest S3 part"):
        make_setup(vault_env, emulator, min_part_size=5 * MiB, chunk_size=6 * MiB)  # 6 MiB rounds down to 4 MiB


# ---- inventory --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["CSV", "JSON"])
def test_inventory_in_csv_and_json_is_recorded_and_written_as_a_file(vault_env, emulator, fmt):
    tricky = 'he said "hi", then left C:\\dir\\f.txt'
    ids = [
        emulator.add_archive(VAULT, payload(1000, 1), "plain.txt", "2020-01-01T00:00:00.000Z"),
        emulator.add_archive(VAULT, payload(5, 2), tricky, "2019-06-01T12:00:00.000Z"),
        emulator.add_archive(VAULT, b"", "", "2021-03-04T05:06:07.000Z"),
    ]
    setup = make_setup(vault_env, emulator, inventory_format=fmt)
    result = flow.take_inventory(setup, VAULT)

    assert (result.state, result.started, result.archives, result.bytes, result.new_archives) == ("loaded", True, 3, 1005, 3)
    assert (result.oldest, result.newest) == ("2019-06-01T12:00:00+00:00", "2021-03-04T05:06:07+00:00")
    [job] = initiated(emulator, "InventoryRetrieval")
    assert job["InventoryRetrievalParameters"]["Format"] == fmt
    rows = {r.archive_id: r for r in setup.store.archives(VAULT)}
    assert set(rows) == set(ids) and {r.status for r in rows.values()} == {"NEW"}
    assert rows[ids[1]].description == tricky and rows[ids[1]].size == 5
    assert rows[ids[0]].tree_hash == tree_hash(payload(1000, 1))
    assert rows[ids[0]].destination_key == f"vaults/{VAULT}/plain.txt"

    df = pd.read_csv(result.path, keep_default_na=False)
    assert list(df.columns) == [
        "vault",
        "archive_id",
        "description",
        "size",
        "creation_date",
        "tree_hash",
        "name",
        "naming_reason",
        "destination_key",
        "status",
    ]
    assert dict(zip(df["archive_id"], df["description"])) == {ids[0]: "plain.txt", ids[1]: tricky, ids[2]: ""}
    assert set(df["status"]) == {"NEW"} and set(df["vault"]) == {VAULT}

    again = flow.take_inventory(setup, VAULT)
    assert (again.state, again.started, again.archives) == ("loaded", False, 3)
    assert len(initiated(emulator, "InventoryRetrieval")) == 1  # the loaded inventory is reused
    refreshed = flow.take_inventory(setup, VAULT, refresh=True)
    assert (refreshed.state, refreshed.started, refreshed.new_archives) == ("loaded", True, 0)
    assert len(setup.store.archives(VAULT)) == 3


def test_inventory_does_not_wait_and_starts_no_second_job_while_one_is_pending(vault_env, emulator):
    emulator.add_archive(VAULT, b"abc", "abc.txt")
    emulator.job_delay_seconds = 3600
    setup = make_setup(vault_env, emulator)
    first = flow.take_inventory(setup, VAULT)
    second = flow.take_inventory(setup, VAULT)
    assert (first.state, first.started, second.state, second.started) == ("waiting", True, "waiting", False)
    assert second.job_id == first.job_id and len(initiated(emulator, "InventoryRetrieval")) == 1
    assert flow.migration_state(setup, VAULT)["inventory"] == "waiting"
    emulator.complete_jobs()
    loaded = flow.take_inventory(setup, VAULT)
    assert (loaded.state, loaded.job_id, loaded.archives) == ("loaded", first.job_id, 1)


def test_naming_rules_end_to_end(vault_env, emulator, tmp_path):
    fg_path = base64.b64encode("photos/2019/été.jpg".encode()).decode()
    archives = {
        "fastglacier": (f"<m><v>4</v><p>{fg_path}</p><lm>20190121T085242Z</lm></m>", "2020-01-01T00:00:00.000Z"),
        "json": ('{"Path":"docs/report.pdf","UTCDateModified":"20100310T110623Z"}', "2020-01-01T00:00:01.000Z"),
        "raw": ("notes/todo.txt", "2020-01-01T00:00:02.000Z"),
        "dotdot": ("../etc/passwd", "2020-01-01T00:00:03.000Z"),
        "empty": ("", "2020-01-01T00:00:04.000Z"),
        "dup_old": ("dup.txt", "2020-01-01T00:00:00.000Z"),
        "dup_new": ("dup.txt", "2020-01-02T00:00:00.000Z"),
        "override": ("ignored.bin", "2020-01-01T00:00:05.000Z"),
    }
    ids = {
        label: emulator.add_archive(VAULT, payload(100 + n, n), desc, created)
        for n, (label, (desc, created)) in enumerate(archives.items())
    }
    names_csv = tmp_path / "names.csv"
    names_csv.write_text(f"ArchiveId,Name\n{ids['override']},renamed/by-hand.bin\n")
    setup = make_setup(vault_env, emulator, {"names_csv_path": str(names_csv)})
    assert setup.overrides == {ids["override"]: "renamed/by-hand.bin"}

    result = flow.take_inventory(setup, VAULT)
    assert result.reasons == {"fastglacier": 1, "json": 1, "raw": 3, "override": 1, "error": 1, "undefined": 1}
    assert result.overrides == str(names_csv)
    flow.request_retrievals(setup, VAULT)
    flow.transfer_archives(setup, VAULT)

    prefix = f"vaults/{VAULT}/"
    expected = {
        "fastglacier": "photos/2019/été.jpg",
        "json": "docs/report.pdf",
        "raw": "notes/todo.txt",
        "dotdot": f"00error/{ids['dotdot']}",
        "empty": f"00undefined/{ids['empty']}",
        "dup_old": "dup.txt",
        "dup_new": "dup.20200102T000000Z-1.txt",
        "override": "renamed/by-hand.bin",
    }
    assert {label: key_of(setup, ids[label]) for label in ids} == {label: prefix + name for label, name in expected.items()}
    for n, label in enumerate(archives):
        assert stored(prefix + expected[label]) == payload(100 + n, n), label
    assert set(statuses(setup).values()) == {"DONE"}


# ---- transfers --------------------------------------------------------------------------------


def test_empty_one_chunk_and_several_chunks_with_a_short_last_one(vault_env, emulator):
    data = {"empty": b"", "one": payload(MiB, 1), "several": payload(3 * MiB + 12345, 2)}
    ids = {
        label: emulator.add_archive(VAULT, d, f"{label}.bin", f"2020-01-0{n + 1}T00:00:00.000Z")
        for n, (label, d) in enumerate(data.items())
    }
    setup = make_setup(vault_env, emulator)
    calls = S3Calls(setup.s3)
    copy_all(setup)

    assert set(statuses(setup).values()) == {"DONE"}
    for label, d in data.items():
        key = key_of(setup, ids[label])
        assert stored(key) == d
        head = s3_client().head_object(Bucket=BUCKET, Key=key)
        assert head["Metadata"]["glacier-tree-hash"] == tree_hash(d) == setup.store.archive_by_id(VAULT, ids[label]).tree_hash
    assert [p["Key"] for p in calls.ops("PutObject")] == [key_of(setup, ids["empty"])]  # no multipart for 0 bytes
    assert len(calls.ops("CreateMultipartUpload")) == 2
    assert all(p["ChecksumAlgorithm"] == "SHA256" and p["StorageClass"] == "STANDARD" for p in calls.ops("CreateMultipartUpload"))
    assert [(p["Key"].rsplit("/", 1)[1], p["PartNumber"]) for p in calls.ops("UploadPart")] == [
        ("one.bin", 1),
        ("several.bin", 1),
        ("several.bin", 2),
        ("several.bin", 3),
        ("several.bin", 4),
    ]
    jobs = {j["ArchiveId"]: j["JobId"] for j in initiated(emulator)}
    assert ids["empty"] not in jobs  # nothing to retrieve for 0 bytes
    assert {j["Tier"] for j in initiated(emulator)} == {"Bulk"}
    assert output_ranges(emulator, jobs[ids["several"]]) == [
        "bytes=0-1048575",
        "bytes=1048576-2097151",
        "bytes=2097152-3145727",
        "bytes=3145728-3158072",
    ]
    assert open_uploads() == []


def test_a_corrupted_range_fails_only_its_archive_before_completion(vault_env, emulator):
    data = {"a": payload(3 * MiB, 1), "b": payload(2 * MiB + 7, 2), "c": payload(MiB // 2, 3)}
    ids = {label: emulator.add_archive(VAULT, d, f"{label}.bin") for label, d in data.items()}
    emulator.corrupt_range(ids["b"], MiB + 10)
    setup = make_setup(vault_env, emulator)
    copy_all(setup)

    assert statuses(setup) == {ids["a"]: "DONE", ids["b"]: "FAILED", ids["c"]: "DONE"}
    [report_b] = [r for r in flow.vault_report(setup, VAULT) if r["archiveId"] == ids["b"]]
    assert "part 2 (bytes 1048576-2097151): tree hash of the bytes received is" in report_b["messages"][-1]
    with pytest.raises(ClientError):
        s3_client().head_object(Bucket=BUCKET, Key=key_of(setup, ids["b"]))
    assert open_uploads() == []
    assert stored(key_of(setup, ids["a"])) == data["a"] and stored(key_of(setup, ids["c"])) == data["c"]
    flow.transfer_archives(setup, VAULT)  # FAILED is final: a rerun does not touch it
    assert statuses(setup)[ids["b"]] == "FAILED"


def test_a_missing_tree_hash_header_is_verified_by_the_whole_tree_hash_and_a_wrong_one_fails_before_completion(vault_env, emulator):
    labels = ["nohash", "nohash_bad", "wrong", "fine"]
    ids = {label: emulator.add_archive(VAULT, payload(2 * MiB, n), f"{label}.bin") for n, label in enumerate(labels)}
    emulator.corrupt_range(ids["nohash_bad"], MiB + 5)  # damaged in transit, and no range header to catch it
    setup = make_setup(vault_env, emulator)
    flow.take_inventory(setup, VAULT)
    wrong = setup.store.archive_by_id(VAULT, ids["wrong"])
    setup.store.update_archive(wrong.pk, tree_hash="0" * 64)  # as if the inventory said something else
    flow.request_retrievals(setup, VAULT)
    nohash_jobs = {setup.store.archive_by_id(VAULT, ids[label]).job_id for label in ("nohash", "nohash_bad")}

    def drop_checksum(parsed, **kwargs):
        if any(job in kwargs["context"].get("glacier_job", "") for job in nohash_jobs):
            parsed.pop("checksum", None)

    setup.glacier.meta.events.register(
        "before-call.glacier.GetJobOutput", lambda params, context, **_: context.update(glacier_job=params["url_path"])
    )
    setup.glacier.meta.events.register("after-call.glacier.GetJobOutput", drop_checksum)
    calls = S3Calls(setup.s3)
    flow.transfer_archives(setup, VAULT)

    assert statuses(setup) == {ids["nohash"]: "DONE", ids["nohash_bad"]: "FAILED", ids["wrong"]: "FAILED", ids["fine"]: "DONE"}
    msgs = {r["archiveId"]: r["messages"][-1] for r in flow.vault_report(setup, VAULT)}
    assert "2 range(s) without x-amz-sha256-tree-hash: verified by the inventory's whole-archive tree hash" in msgs[ids["nohash"]]
    assert "the inventory says" in msgs[ids["nohash_bad"]] and "2 range(s) came without x-amz-sha256-tree-hash" in msgs[ids["nohash_bad"]]
    assert f"the inventory says {'0' * 64}" in msgs[ids["wrong"]]
    completed = sorted(p["Key"] for p in calls.ops("CompleteMultipartUpload"))
    assert completed == sorted([key_of(setup, ids["fine"]), key_of(setup, ids["nohash"])])  # mismatches found before completion
    assert stored(key_of(setup, ids["nohash"])) == payload(2 * MiB, 0)
    assert len(calls.ops("UploadPart")) == 4 * 2  # "wrong" and "nohash_bad" uploaded both parts, then were aborted
    assert open_uploads() == []


def test_a_crash_after_two_parts_resumes_from_the_first_missing_part(vault_env, emulator):
    data = payload(4 * MiB + 100, 7)
    archive_id = emulator.add_archive(VAULT, data, "big.bin")
    setup = make_setup(vault_env, emulator)
    calls = S3Calls(setup.s3, fail_part=3)
    flow.take_inventory(setup, VAULT)
    flow.request_retrievals(setup, VAULT)
    first = flow.transfer_archives(setup, VAULT)

    assert [a for a, _ in first.interrupted] == [archive_id] and first.failed == []
    row = setup.store.archive_by_id(VAULT, archive_id)
    assert row.status == "TRANSFERRING" and row.attempts == 1 and "resumes from the first missing part" in row.messages[-1]
    assert sorted(setup.store.parts(row.pk, row.upload_id)) == [1, 2]
    assert [u["UploadId"] for u in open_uploads()] == [row.upload_id]

    calls.clear()
    second = flow.transfer_archives(setup, VAULT)
    assert [a for a, _ in second.done] == [archive_id]
    assert [p["PartNumber"] for p in calls.ops("UploadPart")] == [3, 4, 5]
    assert len(calls.ops("ListParts")) == 1 and calls.ops("CreateMultipartUpload") == []
    # Run 1 fetched ranges 1-3 (3 was fetched, then its upload failed); run 2 fetched only 3-5.
    assert output_ranges(emulator, row.job_id) == [
        "bytes=0-1048575",
        "bytes=1048576-2097151",
        "bytes=2097152-3145727",
        "bytes=2097152-3145727",
        "bytes=3145728-4194303",
        "bytes=4194304-4194403",
    ]
    assert stored(row.destination_key) == data and open_uploads() == []


def test_an_existing_destination_object_is_not_transferred_again_nor_overwritten(vault_env, emulator):
    data = {"present": payload(2 * MiB, 1), "foreign": payload(MiB, 2), "fresh": payload(MiB, 3)}
    ids = {label: emulator.add_archive(VAULT, d, f"{label}.bin") for label, d in data.items()}
    setup = make_setup(vault_env, emulator)
    flow.take_inventory(setup, VAULT)
    s3_client().put_object(Bucket=BUCKET, Key=key_of(setup, ids["present"]), Body=data["present"])
    s3_client().put_object(Bucket=BUCKET, Key=key_of(setup, ids["foreign"]), Body=b"something else")
    calls = S3Calls(setup.s3)
    flow.request_retrievals(setup, VAULT)
    flow.transfer_archives(setup, VAULT)

    assert statuses(setup) == {ids["present"]: "DONE", ids["foreign"]: "FAILED", ids["fresh"]: "DONE"}
    assert [j["ArchiveId"] for j in initiated(emulator)] == [ids["fresh"]]  # no retrieval for the other two
    written = {p["Key"] for op in ("PutObject", "CreateMultipartUpload", "UploadPart") for p in calls.ops(op)}
    assert written == {key_of(setup, ids["fresh"])}
    assert stored(key_of(setup, ids["foreign"])) == b"something else"
    msgs = {r["archiveId"]: r["messages"][-1] for r in flow.vault_report(setup, VAULT)}
    assert "already exists with the expected size" in msgs[ids["present"]]
    assert "not overwritten" in msgs[ids["foreign"]]

    s3_client().delete_object(Bucket=BUCKET, Key=key_of(setup, ids["foreign"]))  # an operator moved the other object away
    assert flow.retry_failed(setup, VAULT) == 1  # FAILED is final until asked
    flow.request_retrievals(setup, VAULT)
    flow.transfer_archives(setup, VAULT)
    assert statuses(setup)[ids["foreign"]] == "DONE" and stored(key_of(setup, ids["foreign"])) == data["foreign"]


# ---- jobs: expiry, quota, limits --------------------------------------------------------------


def test_a_job_output_about_to_expire_is_requested_again(vault_env, emulator):
    data = payload(2 * MiB, 4)
    archive_id = emulator.add_archive(VAULT, data, "old.bin")
    clock = Clock()
    setup = make_setup(vault_env, emulator, clock=clock)
    flow.take_inventory(setup, VAULT)
    first = flow.request_retrievals(setup, VAULT)
    old_job = setup.store.archive_by_id(VAULT, archive_id).job_id
    assert first.started == [(archive_id, 2 * MiB)]

    clock.advance(hours=18)  # inside the margin: nothing to do, the job was just found complete
    assert flow.request_retrievals(setup, VAULT).reinitiated == []
    assert setup.store.archive_by_id(VAULT, archive_id).status == "STAGED"
    clock.advance(hours=2)  # 20 h after completion, not copied yet: 19 h margin passed
    again = flow.request_retrievals(setup, VAULT)
    row = setup.store.archive_by_id(VAULT, archive_id)
    assert [(a, old) for a, old, _ in again.reinitiated] == [(archive_id, old_job)]
    assert row.job_id == again.reinitiated[0][2] != old_job and row.status == "REQUESTED" and row.jobs_started == 2
    assert "requested again as job" in row.messages[-1]
    assert len(initiated(emulator)) == 2

    flow.transfer_archives(setup, VAULT)
    assert statuses(setup) == {archive_id: "DONE"}
    assert output_ranges(emulator, old_job) == [] and len(output_ranges(emulator, row.job_id)) == 2
    assert stored(row.destination_key) == data


def test_an_expired_job_output_mid_transfer_is_requested_again_and_the_upload_continues(vault_env, emulator):
    data = payload(3 * MiB, 5)
    archive_id = emulator.add_archive(VAULT, data, "resume.bin")
    setup = make_setup(vault_env, emulator)
    calls = S3Calls(setup.s3, fail_part=2)
    flow.take_inventory(setup, VAULT)
    flow.request_retrievals(setup, VAULT)
    flow.transfer_archives(setup, VAULT)  # part 1 uploaded, part 2 interrupted
    old = setup.store.archive_by_id(VAULT, archive_id)
    emulator.expire_job(old.job_id)

    requeued = flow.transfer_archives(setup, VAULT)
    assert [a for a, _ in requeued.requeued] == [archive_id]
    row = setup.store.archive_by_id(VAULT, archive_id)
    assert row.status == "NEW" and row.upload_id == old.upload_id and "parts already uploaded are kept" in row.messages[-1]
    flow.request_retrievals(setup, VAULT)
    new_job = setup.store.archive_by_id(VAULT, archive_id).job_id
    assert new_job != old.job_id
    calls.clear()
    flow.transfer_archives(setup, VAULT)
    assert statuses(setup) == {archive_id: "DONE"}
    assert [p["PartNumber"] for p in calls.ops("UploadPart")] == [2, 3]
    assert output_ranges(emulator, new_job) == ["bytes=1048576-2097151", "bytes=2097152-3145727"]
    assert stored(row.destination_key) == data


def test_a_failed_retrieval_job_is_started_again_then_given_up(vault_env, emulator):
    archive_id = emulator.add_archive(VAULT, payload(1000, 1), "flaky.bin")
    setup = make_setup(vault_env, emulator)
    flow.take_inventory(setup, VAULT)
    emulator.job_delay_seconds = 3600
    flow.request_retrievals(setup, VAULT)
    for attempt in range(1, flow.MAX_JOB_FAILURES + 1):
        job_id = setup.store.archive_by_id(VAULT, archive_id).job_id
        emulator.fail_job(job_id, "Simulated failure.")
        report = flow.request_retrievals(setup, VAULT)
        assert report.jobs.failed == [job_id]
        row = setup.store.archive_by_id(VAULT, archive_id)
        if attempt < flow.MAX_JOB_FAILURES:  # back to NEW and started again in the same step
            assert [a for a, _ in report.started] == [archive_id] and row.status == "REQUESTED" and row.job_id != job_id
    assert (row.status, row.job_failures) == ("FAILED", flow.MAX_JOB_FAILURES)
    assert "Simulated failure." in row.messages[-1] and "gave up after 3 failed jobs" in row.messages[-1]
    assert len(initiated(emulator)) == flow.MAX_JOB_FAILURES


def test_the_daily_quota_paces_retrievals_in_creation_order(vault_env, emulator):
    # Added newest first: the retrieval order must come from CreationDate, not from the vault.
    ids = [emulator.add_archive(VAULT, payload(MiB, n), f"f{n}.bin", f"2020-01-0{5 - n}T00:00:00.000Z") for n in range(5)]
    oldest_first = ids[::-1]
    clock = Clock()
    setup = make_setup(vault_env, emulator, clock=clock, daily_bytes=int(2.5 * MiB))
    flow.take_inventory(setup, VAULT)

    def run() -> list[str]:
        report = flow.request_retrievals(setup, VAULT)
        flow.transfer_archives(setup, VAULT)
        return [a for a, _ in report.started]

    assert run() == oldest_first[:2]
    clock.advance(hours=23)
    assert run() == []  # the first two still count for 24 h
    assert [s for s in statuses(setup).values()].count("NEW") == 3
    eta = flow.estimate_remaining(setup, VAULT)  # 2 MiB in 23 h since the inventory: 3 MiB left take 34.5 h
    assert eta["bytes_remaining"] == 3 * MiB and eta["seconds"] == pytest.approx(34.5 * 3600)
    assert eta["quota_days"] == pytest.approx(3 / 2.5) and flow.format_duration(eta["seconds"]) == "1 d 10 h"
    clock.advance(hours=1, seconds=1)
    assert run() == oldest_first[2:4]
    clock.advance(hours=24, seconds=1)
    assert run() == oldest_first[4:]
    assert set(statuses(setup).values()) == {"DONE"}
    assert len(initiated(emulator)) == 5


def test_jobs_per_run_limit_and_archives_too_big_for_s3(vault_env, emulator, monkeypatch):
    monkeypatch.setattr(
        "glacier_pipelines.flows.vault.retrievals.S3_MAX_OBJECT_BYTES", 2 * MiB
    )  # stands for S3's 5 TiB: no 5 TiB archive in a test
    big = emulator.add_archive(VAULT, payload(3 * MiB, 9), "huge.bin", "2019-01-01T00:00:00.000Z")
    small = [emulator.add_archive(VAULT, payload(1000, n), f"s{n}.bin", f"2020-01-0{n + 1}T00:00:00.000Z") for n in range(3)]
    setup = make_setup(vault_env, emulator, max_jobs=2)
    flow.take_inventory(setup, VAULT)
    first = flow.request_retrievals(setup, VAULT)
    assert [a for a, _ in first.started] == small[:2] and first.rate_limited
    assert [a for a, _ in first.skipped] == [big]
    assert "more than S3's largest single object" in first.skipped[0][1]
    second = flow.request_retrievals(setup, VAULT)
    assert [a for a, _ in second.started] == small[2:] and not second.rate_limited
    flow.transfer_archives(setup, VAULT)
    assert statuses(setup) == {big: "SKIPPED", **{a: "DONE" for a in small}}
    assert big not in [j["ArchiveId"] for j in initiated(emulator)]


# ---- migrate ----------------------------------------------------------------------------------


def test_migrate_waits_for_glacier_and_returns_the_report(vault_env, emulator):
    data = [payload(n * 700_000, n) for n in range(4)]
    ids = [emulator.add_archive(VAULT, d, f"m{n}.bin", f"2020-01-0{n + 1}T00:00:00.000Z") for n, d in enumerate(data)]
    emulator.job_delay_seconds = 1.5  # long enough that a loaded machine still sees the wait
    setup = make_setup(vault_env, emulator)
    lines: list[str] = []
    report = flow.migrate(setup, VAULT, wait=True, poll_seconds=0.2, timeout_seconds=30, progress=lines.append)

    assert [r["archiveId"] for r in report] == ids
    assert [r["status"] for r in report] == ["DONE"] * 4
    assert [r["sizeInBytes"] for r in report] == [len(d) for d in data]
    assert all({"archiveId", "destinationKey", "status", "sizeInBytes", "messages"} <= set(r) for r in report)
    for r, d in zip(report, data):
        assert stored(r["destinationKey"]) == d
    assert any("waiting for inventory job" in line for line in lines)
    assert flow.migration_state(setup, VAULT)["finished"]


def test_migrate_without_wait_makes_one_pass_and_reports_pending_archives(vault_env, emulator):
    ids = [emulator.add_archive(VAULT, payload(1000, n), f"p{n}.bin") for n in range(2)]
    setup = make_setup(vault_env, emulator)
    assert flow.take_inventory(setup, VAULT).state == "loaded"
    emulator.job_delay_seconds = 3600
    report = flow.migrate(setup, VAULT, wait=False, progress=lambda _: None)
    assert [r["status"] for r in report] == ["REQUESTED", "REQUESTED"]
    timed_out = flow.migrate(setup, VAULT, wait=True, poll_seconds=0.1, timeout_seconds=0.35, progress=lambda _: None)
    assert {r["archiveId"]: r["status"] for r in timed_out} == {a: "REQUESTED" for a in ids}
    assert len(initiated(emulator)) == 2  # waiting started no duplicate jobs


@pytest.mark.parametrize("asked, answered", [("CSV", "JSON"), ("JSON", "CSV")])
def test_an_inventory_in_the_other_format_than_asked_is_read_by_its_content(vault_env, emulator, asked, answered):
    ids = {emulator.add_archive(VAULT, payload(100 + n, n), f"f{n}.bin") for n in range(3)}
    emulator.answer_inventory_in = answered
    setup = make_setup(vault_env, emulator, inventory_format=asked)
    result = flow.take_inventory(setup, VAULT)
    assert result.state == "loaded", result.message
    assert {r["archiveId"] for r in flow.vault_report(setup, VAULT)} == ids
