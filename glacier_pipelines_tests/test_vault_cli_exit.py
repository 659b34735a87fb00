"""`glacier-pipelines vault migrate` exit statuses: 0 all done, 1 a run or an archive failed, 2 refused input/configuration."""

from __future__ import annotations

import dagster as dg
import pytest

from glacier_pipelines import cli
from glacier_pipelines.flows import vault as vault_flow
from glacier_pipelines_tests.flows.test_vault_flow import (  # noqa: F401 (fixtures)
    VAULT,
    emulator,
    vault_env,
)


@pytest.fixture
def vault_cli_env(vault_env, emulator, monkeypatch):  # noqa: F811
    monkeypatch.setenv("GLACIER_VAULT_ENDPOINT_URL", emulator.endpoint_url)
    return emulator


def test_fault_repeats_counts_only_the_same_fault_in_a_row():
    repeats = vault_flow.FaultRepeats(limit=3)
    for fault in ["a", "a", None, "a", "b", "b"]:
        repeats.observe(fault)
    with pytest.raises(vault_flow.RepeatedFault, match="3 runs in a row, stopping: b"):
        repeats.observe("b")


@pytest.mark.slow
def test_a_vault_that_does_not_exist_exits_2_at_once_naming_vault_and_settings(vault_cli_env, capsys):
    status = cli.main(["vault", "migrate", "--vault", "no-such-vault"])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1
    assert "'no-such-vault' does not exist" in err and "GLACIER_VAULT_REGION" in err and "GLACIER_VAULT_ACCOUNT_ID" in err
    assert not vault_cli_env.jobs  # refused before any Glacier job was started


@pytest.mark.slow
def test_a_failed_run_exits_1_with_its_fault(vault_cli_env, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("inventory refused: AccessDenied")

    monkeypatch.setattr(vault_flow, "take_inventory", broken)
    status = cli.main(["vault", "migrate", "--vault", VAULT])
    err = capsys.readouterr().err
    assert status == 1
    assert "failed" in err and "inventory refused: AccessDenied" in err


@pytest.mark.slow
def test_wait_stops_after_the_same_fault_three_times_and_exits_1(vault_cli_env, monkeypatch, capsys):
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise dg.Failure("inventory refused: AccessDenied", allow_retries=False)  # the asset's RetryPolicy would only add minutes

    monkeypatch.setattr(vault_flow, "take_inventory", broken)
    status = cli.main(["vault", "migrate", "--vault", VAULT, "--wait", "--poll-seconds", "0", "--timeout-hours", "96"])
    err = capsys.readouterr().err
    assert status == 1
    assert len(calls) == 3 and err.count("FAILED: ") == 3  # three runs, then the stop (before: polled for 96 h)
    assert "the same fault ended 3 runs in a row" in err and "inventory refused: AccessDenied" in err


@pytest.mark.slow
def test_a_completed_migration_exits_0(vault_cli_env, capsys):
    vault_cli_env.add_archive(VAULT, b"hello vault")
    status = cli.main(["vault", "migrate", "--vault", VAULT, "--wait", "--poll-seconds", "0", "--timeout-hours", "0.02", "--json"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert '"DONE"' in out
