"""Vault copies through Dagster: the three assets for partition "myvault", vault_jobs_sensor, a 200-archive copy.

Same environment as ``glacier_pipelines_tests/flows/test_vault_flow.py`` (whose docstring says
why moto and the vault double coexist): the fixtures come from there.
"""

from __future__ import annotations

import random

import dagster as dg
import pandas as pd
import pytest

from glacier_pipelines.flows import vault as flow
from glacier_pipelines_tests.conftest import BUCKET, materializations, s3_client
from glacier_pipelines_tests.flows.test_vault_flow import (  # noqa: F401 (fixtures)
    VAULT,
    emulator,
    payload,
    vault_env,
    vault_resource,
)
from glacier_pipelines_tests.vault_double import MiB, tree_hash


@pytest.fixture(scope="module")
def instance():
    """One Dagster instance for the module (creating one costs about 2 s); each test has its own catalog and vault."""
    with dg.instance_for_test() as inst:
        yield inst


def vault_defs(archive, emulator, **fields) -> dg.Definitions:
    from glacier_pipelines.defs.vault import definitions as vault
    from glacier_pipelines.resources import resources_from_env

    resources = resources_from_env()
    return dg.Definitions.merge(
        vault.defs,
        dg.Definitions(
            resources={
                "catalog": resources["catalog"],
                "archive_store": resources["archive_store"],
                "vault": vault_resource(archive, emulator, **fields),
            }
        ),
    )


def run_vault_job(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    if not instance.has_dynamic_partition("vaults", VAULT):
        instance.add_dynamic_partitions("vaults", [VAULT])
    return defs.resolve_job_def("vault_job").execute_in_process(partition_key=VAULT, instance=instance, raise_on_error=False)


def setup_of(defs: dg.Definitions) -> flow.VaultSetup:
    r = defs.resources
    return r["vault"].setup(r["catalog"], r["archive_store"])


def test_vault_definitions_are_part_of_the_code_location():
    from glacier_pipelines.definitions import defs as merged
    from glacier_pipelines.resources.vault import VaultResource

    assert isinstance(merged.resources["vault"], VaultResource)
    graph = merged.resolve_asset_graph()
    parents = {
        name: sorted(p.to_user_string() for p in graph.get(dg.AssetKey(name)).parent_keys)
        for name in ("vault_inventory", "archive_retrievals", "archive_transfers")
    }
    assert parents == {"vault_inventory": [], "archive_retrievals": ["vault_inventory"], "archive_transfers": ["archive_retrievals"]}
    assert {graph.get(dg.AssetKey(n)).partitions_def.name for n in parents} == {"vaults"}
    assert {graph.get(dg.AssetKey(n)).group_name for n in parents} == {"vault"}
    assert merged.resolve_job_def("vault_job") is not None
    assert "vault_jobs_sensor" in {s.name for s in merged.sensors}
    r = VaultResource()
    assert (r.endpoint_url, r.tier, r.chunk_size_mb, r.daily_bytes, r.expiry_margin_hours, r.inventory_format, r.account_id) == (
        None,
        "Bulk",
        64,
        1024**4,
        19.0,
        "CSV",
        "-",
    )  # endpoint unset: AWS itself


def test_vault_job_copies_the_partition_with_auditable_metadata(vault_env, emulator, instance):
    data = {"empty": b"", "small": payload(300_000, 1), "multi": payload(2 * MiB + 5, 2)}
    ids = {
        label: emulator.add_archive(VAULT, d, f"dir/{label}.bin", f"2020-01-0{n + 1}T00:00:00.000Z")
        for n, (label, d) in enumerate(data.items())
    }
    defs = vault_defs(vault_env, emulator)
    result = run_vault_job(defs, instance)
    assert result.success
    m = materializations(result)

    inv = m["vault_inventory"]
    assert (inv["status"], inv["archives"], inv["total_bytes"], inv["names_raw"], inv["names_error"]) == (
        "loaded",
        3,
        2 * MiB + 300_005,
        3,
        0,
    )
    assert inv["oldest"].startswith("2020-01-01") and inv["newest"].startswith("2020-01-03")
    assert inv["naming_reasons"] == {"fastglacier": 0, "json": 0, "raw": 3, "override": 0, "error": 0, "undefined": 0}
    frame = pd.read_csv(inv["inventory_path"], keep_default_na=False)
    assert sorted(frame["archive_id"]) == sorted(ids.values())

    ret = m["archive_retrievals"]
    assert (ret["jobs_started"], ret["bytes_started"], ret["empty_archives"], ret["pacing"]) == (2, 2 * MiB + 300_005, 1, "not limited")

    tr = m["archive_transfers"]
    assert (tr["done_archives"], tr["done_bytes"], tr["downloaded_archives"], tr["failed_archives"], tr["skipped_archives"]) == (
        3,
        2 * MiB + 300_005,
        3,
        0,
        0,
    )
    assert (tr["requested_archives"], tr["staged_archives"], tr["bytes_remaining"], tr["estimated_time_remaining"]) == (
        0,
        0,
        0,
        "0 min 0 s",
    )
    assert tr["progress_plot"].startswith("![bytes copied vs total](data:image/png;base64,iVBOR")
    for label in data:
        assert f"vaults/{VAULT}/dir/{label}.bin" in tr["report"]
    report = pd.read_csv(tr["report_path"], keep_default_na=False)
    assert set(report["status"]) == {"DONE"} and len(report) == 3
    for label, d in data.items():
        assert s3_client().get_object(Bucket=BUCKET, Key=f"vaults/{VAULT}/dir/{label}.bin")["Body"].read() == d

    again = run_vault_job(defs, instance)  # nothing left: a rerun retrieves and uploads nothing
    assert again.success
    m2 = materializations(again)
    assert (m2["vault_inventory"]["status"], m2["archive_retrievals"]["jobs_started"], m2["archive_transfers"]["downloaded_archives"]) == (
        "loaded",
        0,
        0,
    )
    assert len([j for j in emulator.jobs.values() if j["Action"] == "InventoryRetrieval"]) == 1


def test_inventory_waits_and_the_sensor_requests_a_run_once_glacier_is_done(vault_env, emulator, instance):
    from glacier_pipelines.defs.vault.assets import archive_retrievals, archive_transfers, vault_inventory
    from glacier_pipelines.defs.vault.sensors import vault_jobs_sensor

    ids = [emulator.add_archive(VAULT, payload(1000 + n, n), f"s{n}.txt") for n in range(3)]
    emulator.job_delay_seconds = 3600
    defs = vault_defs(vault_env, emulator)
    if not instance.has_dynamic_partition("vaults", VAULT):
        instance.add_dynamic_partitions("vaults", [VAULT])
    assets = [vault_inventory, archive_retrievals, archive_transfers]
    first = dg.materialize(assets, partition_key=VAULT, instance=instance, resources=defs.resources)
    assert first.success
    m = materializations(first)
    assert m["vault_inventory"]["status"] == "waiting" and "waiting for Glacier" in m["vault_inventory"]["message"]
    assert m["archive_transfers"]["total_archives"] == 0

    def tick(cursor=None):
        return vault_jobs_sensor(dg.build_sensor_context(instance=instance, resources=defs.resources, cursor=cursor))

    quiet = tick()
    assert quiet.run_requests == []  # the inventory job is still running
    emulator.complete_jobs()
    ready = tick(quiet.cursor)
    [request] = ready.run_requests
    assert request.partition_key == VAULT and request.run_key.startswith(f"vault:{VAULT}:")
    repeat = tick(ready.cursor)
    assert [r.run_key for r in repeat.run_requests] == [request.run_key]  # same state, same key: Dagster adds no run
    assert json_cursor(repeat.cursor)["ready"] == 1

    second = dg.materialize(assets, partition_key=VAULT, instance=instance, resources=defs.resources)
    m = materializations(second)
    assert m["vault_inventory"]["status"] == "loaded" and m["archive_retrievals"]["jobs_started"] == 3
    assert m["archive_transfers"]["requested_archives"] == 3
    assert tick().run_requests == []  # archive jobs still running, nothing new to start
    emulator.complete_jobs()
    staged = tick()
    [request2] = staged.run_requests
    assert request2.run_key != request.run_key
    third = dg.materialize(assets, partition_key=VAULT, instance=instance, resources=defs.resources)
    assert materializations(third)["archive_transfers"]["done_archives"] == 3
    assert tick().run_requests == []
    assert set(flow.migration_state(setup_of(defs), VAULT)["archives"].items()) >= {("DONE", 3)}
    assert ids


def json_cursor(cursor: str) -> dict:
    import json

    return json.loads(cursor)


def test_the_sensor_adds_a_missing_partition_and_waits_for_the_quota(vault_env, emulator, instance):
    from glacier_pipelines.defs.vault.sensors import vault_jobs_sensor

    for n in range(3):
        emulator.add_archive(VAULT, payload(MiB, n), f"q{n}.bin", f"2020-01-0{n + 1}T00:00:00.000Z")
    defs = vault_defs(vault_env, emulator, daily_bytes=2 * MiB)
    setup = setup_of(defs)
    assert flow.take_inventory(setup, VAULT).state == "loaded"
    emulator.job_delay_seconds = 3600
    flow.migrate(setup, VAULT, wait=False, progress=lambda _: None)  # e.g. the CLI without Dagster: no partition yet
    assert sorted(r["status"] for r in flow.vault_report(setup, VAULT)) == ["NEW", "REQUESTED", "REQUESTED"]

    def tick():
        return vault_jobs_sensor(dg.build_sensor_context(instance=instance, resources=defs.resources))

    if instance.has_dynamic_partition("vaults", VAULT):  # the module's instance: another test added it
        instance.delete_dynamic_partition("vaults", VAULT)
    quiet = tick()
    assert quiet.run_requests == [] and not quiet.dynamic_partitions_requests  # jobs running, quota used up for 24 h
    emulator.complete_jobs()
    ready = tick()
    assert [r.partition_key for r in ready.run_requests] == [VAULT]
    assert [(r.partitions_def_name, r.partition_keys) for r in ready.dynamic_partitions_requests] == [("vaults", [VAULT])]


def test_end_to_end_copy_of_200_archives_matches_every_source_tree_hash(vault_env, emulator, instance):
    rng = random.Random(2024)
    sources: dict[str, bytes] = {}
    for n in range(200):
        size = rng.choice([0, MiB, 2 * MiB, rng.randrange(1, 3 * MiB + 1)]) if n % 10 == 0 else rng.randrange(0, 3 * MiB + 1)
        data = rng.randbytes(size)
        sources[emulator.add_archive(VAULT, data, f"e2e/file-{n:03d}.bin", f"2020-01-01T00:{n // 60:02d}:{n % 60:02d}.000Z")] = data
    defs = vault_defs(vault_env, emulator, concurrency=2)
    result = run_vault_job(defs, instance)
    assert result.success
    tr = materializations(result)["archive_transfers"]
    assert (tr["done_archives"], tr["failed_archives"], tr["total_bytes"]) == (200, 0, sum(len(d) for d in sources.values()))

    setup = setup_of(defs)
    report = {r["archiveId"]: r for r in flow.vault_report(setup, VAULT)}
    assert {r["status"] for r in report.values()} == {"DONE"} and set(report) == set(sources)
    s3 = s3_client()
    for archive_id, data in sources.items():
        body = s3.get_object(Bucket=BUCKET, Key=report[archive_id]["destinationKey"])["Body"].read()
        assert tree_hash(body) == tree_hash(data) == report[archive_id]["sha256TreeHash"], archive_id
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
