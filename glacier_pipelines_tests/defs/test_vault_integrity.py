"""The blocking check `transfer_integrity` on `archive_transfers`: what S3 holds is re-read, a tampered copy is named and FAILED."""

from __future__ import annotations

import dagster as dg

from glacier_pipelines.flows import vault as flow
from glacier_pipelines_tests.conftest import BUCKET, s3_client
from glacier_pipelines_tests.defs.test_vault import instance, run_vault_job, setup_of, vault_defs  # noqa: F401 (fixture)
from glacier_pipelines_tests.flows.test_vault_flow import VAULT, emulator, payload, vault_env  # noqa: F401 (fixtures)
from glacier_pipelines_tests.vault_double import MiB


def check_results(result: dg.ExecuteInProcessResult) -> list[dg.AssetCheckEvaluation]:
    return [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]


def test_a_clean_copy_passes_the_integrity_check(vault_env, emulator, instance):  # noqa: F811
    emulator.add_archive(VAULT, payload(2 * MiB + 5, 1), "a.bin")
    emulator.add_archive(VAULT, b"", "empty.bin")
    result = run_vault_job(vault_defs(vault_env, emulator), instance)
    assert result.success
    [check] = check_results(result)
    assert check.check_name == "transfer_integrity" and check.passed
    assert check.metadata["failed_archives"].value == 0


def test_a_copy_tampered_with_after_the_copy_fails_the_check_naming_it(vault_env, emulator, instance, monkeypatch):  # noqa: F811
    ids = {label: emulator.add_archive(VAULT, payload(MiB + 7, n), f"{label}.bin") for n, label in enumerate(["good", "bad"])}
    original = flow.transfer_archives
    bad_key = f"vaults/{VAULT}/bad.bin"

    def copy_then_tamper(*args, **kwargs):
        report = original(*args, **kwargs)
        s3_client().put_object(Bucket=BUCKET, Key=bad_key, Body=payload(MiB + 7, 99))  # same size, other bytes
        return report

    monkeypatch.setattr(flow, "transfer_archives", copy_then_tamper)
    defs = vault_defs(vault_env, emulator)
    result = run_vault_job(defs, instance)
    [check] = check_results(result)
    assert not check.passed
    assert check.metadata["failed_archives"].value == 1
    table = check.metadata["failures"].value
    assert ids["bad"] in table and bad_key in table and ids["good"] not in table
    store = setup_of(defs).store
    assert store.archive_by_id(VAULT, ids["bad"]).status == "FAILED"  # never offered as done
    assert "integrity check" in store.archive_by_id(VAULT, ids["bad"]).messages[-1]
    assert store.archive_by_id(VAULT, ids["good"]).status == "DONE"
