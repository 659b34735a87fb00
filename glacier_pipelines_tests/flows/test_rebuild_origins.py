"""`catalog rebuild` gives back moves and vault copies (issue #17, item 1): the move listing and the vault status before
the catalog is lost and after its rebuild, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json

import pytest

from glacier_pipelines import cli
from glacier_pipelines.flows import moves as move_flow
from glacier_pipelines.flows import vault as vault_flow
from glacier_pipelines.flows.move_ledger import listing
from glacier_pipelines.flows.rebuild import rebuild
from glacier_pipelines_tests.conftest import BUCKET, s3_client
from glacier_pipelines_tests.flows.test_moves import moves, put  # noqa: F401  (moves: the fixture)
from glacier_pipelines_tests.flows.test_rebuild import _lose_the_catalog, _report
from glacier_pipelines_tests.flows.test_vault_flow import VAULT, emulator, make_setup, payload, vault_env  # noqa: F401  (fixtures)
from glacier_pipelines_tests.integration.conftest import postgres_url  # noqa: F401  (the fixture, for catalog_backend)
from glacier_pipelines_tests.vault_double import MiB


@pytest.fixture(autouse=True)
def _on_sqlite_and_postgresql(catalog_backend):
    """Run on both catalog databases."""


def _archive_files(archive, files: dict[str, bytes]) -> None:
    """Archive files through the archive path's own steps (no Dagster run), answered by the check: the ledger has them."""
    from glacier_pipelines.flows import archive as archive_flow
    from glacier_pipelines.resources.archive import archive_setup

    archive.submit(*[archive.request("lab", archive.file(rid, data), data, requestId=rid) for rid, data in files.items()])
    r = archive.defs().resources
    setup = archive_setup(r["catalog"], r["archive_store"], r["sources"], r["request_transport"])
    batch, _ = archive_flow.claim_batch(setup.catalog, "lab", "setup", 100, lambda run: True)
    archive_flow.verify_batch(setup, batch, "lab", "setup")
    archive_flow.store_batch(setup, batch, "lab", "setup")
    archive_flow.check_waiting(setup, "lab")
    assert {row["status"] for row in archive.report("lab").values()} == {"SUCCESS"}


def test_moves_and_soft_deletes_come_back_as_the_move_listing_showed_them(archive, moves, monkeypatch, tmp_path, capsys):  # noqa: F811
    monkeypatch.setenv("GLACIER_STORAGE_CLASS", "STANDARD")  # readable, as an application's files are
    doomed = b"a file the user deleted"
    _archive_files(archive, {"doomed": doomed, "kept": b"another file"})
    setup = moves()
    put("archive/lab/app/a.pdf", b"an application's upload" * 20)
    put("archive/lab/app/b.pdf", b"another upload" * 20)
    put("lab/scans/s1.tif", b"a scan in a granted source" * 30, bucket="uploads")
    put("archive/lab/odd/wrong.bin", b"bytes whose announced checksum is wrong")
    base = f"s3://{BUCKET}/archive/lab"
    assert {
        o.status
        for o in move_flow.move(
            setup, move_flow.MoveRequest(tenant="lab", url=f"{base}/app/", storage_class="GLACIER"), run_id="run-in-place"
        ).outcomes
    } == {move_flow.MOVED}
    to_archive = move_flow.move(
        setup, move_flow.MoveRequest(tenant="lab", url="s3://uploads/lab/scans/", destination="archive"), run_id="run-to-archive"
    )
    assert [o.destination for o in to_archive.outcomes] == [f"{base}/scans/s1.tif"]
    failed = move_flow.move(
        setup,
        move_flow.MoveRequest(tenant="lab", url=f"{base}/odd/wrong.bin", verification="stream", checksum="MD5:" + "0" * 32),
        run_id="run-failed",
    )
    assert failed.outcomes[0].status == move_flow.FAILED and "MD5" in failed.outcomes[0].messages[0]
    assert move_flow.trash(setup, "lab", "doomed", run_id="run-trash").status == move_flow.MOVED
    md5 = hashlib.md5(doomed).hexdigest()
    before, report = listing(setup, "lab"), _report(archive.catalog())
    assert [(r["kind"], r["status"], r["copiedByRun"]) for r in before] == [
        ("MOVE", "DONE", "run-in-place"),
        ("MOVE", "DONE", "run-in-place"),
        ("TRASH", "DONE", "run-trash"),
        ("MOVE", "FAILED", None),
        ("MOVE", "DONE", "run-to-archive"),
    ]
    assert "/trash/" in report[("lab", "doomed")]["storedFileUrl"] and archive.catalog().find_object("lab", "MD5", md5) is None

    fresh = _lose_the_catalog(archive.catalog())
    counts = rebuild(fresh, s3_client(), BUCKET, "archive")

    assert counts["moves"] == 5 and counts["unresolved"] == 0
    assert listing(moves(), "lab") == before  # kind, source, destination, status, checksums, verification, runs, messages
    monkeypatch.setenv("GLACIER_LIFECYCLE_CONFIG", str(tmp_path / "lifecycle.toml"))  # the moves fixture's declaration
    assert cli.main(["move", "--tenant", "lab", "--list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == before
    assert cli.main(["move", "--tenant", "lab", "--list"]) == 0
    assert "copied by run-to-archive" in capsys.readouterr().out
    assert _report(fresh) == report  # the trashed file's request names the trash key, as before
    assert fresh.find_object("lab", "MD5", md5) is None  # still out of the content lookups
    scan = hashlib.sha256(b"a scan in a granted source" * 30).hexdigest()
    assert fresh.find_object("lab", "SHA-256", scan).key == "archive/lab/scans/s1.tif"
    again = rebuild(fresh, s3_client(), BUCKET, "archive")
    assert again["moves"] == 0 and listing(moves(), "lab") == before  # idempotent


def test_vault_copies_come_back_as_vault_status_showed_them(vault_env, emulator, monkeypatch, capsys):  # noqa: F811
    data = {"a": payload(2 * MiB + 5, 1), "b": payload(MiB + 7, 2), "empty": b"", "bad": payload(2 * MiB, 3)}
    descriptions = {"a": '{"Path":"scans/a.tif"}', "b": "b.bin", "empty": "empty.bin", "bad": "bad.bin"}
    ids = {k: emulator.add_archive(VAULT, d, descriptions[k], f"2020-01-0{n + 1}T00:00:00.000Z") for n, (k, d) in enumerate(data.items())}
    emulator.corrupt_range(ids["bad"], MiB + 3)
    setup = make_setup(vault_env, emulator)
    report = vault_flow.migrate(setup, VAULT, wait=True, poll_seconds=0.05, timeout_seconds=30, progress=lambda _: None, run_id="run-1")
    assert {r["archiveId"]: (r["status"], r["doneByRun"]) for r in report} == {
        ids["a"]: ("DONE", "run-1"),
        ids["b"]: ("DONE", "run-1"),
        ids["empty"]: ("DONE", "run-1"),
        ids["bad"]: ("FAILED", "run-1"),
    }
    before = {"state": vault_flow.migration_state(setup, VAULT), "archives": vault_flow.vault_report(setup, VAULT)}
    assert before["state"]["finished"] and before["state"]["inventory"] == "loaded"

    fresh = _lose_the_catalog(setup.catalog)
    assert vault_flow.vault_report(make_setup(vault_env, emulator), VAULT) == []
    counts = rebuild(fresh, s3_client(), BUCKET, "archive", vault_prefix="vaults")

    assert (counts["vaults"], counts["vault_archives"], counts["vault_copies_from_metadata"]) == (1, 4, 0)
    after = make_setup(vault_env, emulator)
    assert {"state": vault_flow.migration_state(after, VAULT), "archives": vault_flow.vault_report(after, VAULT)} == before
    monkeypatch.setenv("GLACIER_VAULT_ENDPOINT_URL", emulator.endpoint_url)
    assert cli.main(["vault", "status", "--vault", VAULT, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == before
    assert cli.main(["vault", "status", "--vault", VAULT]) == 0
    out = capsys.readouterr().out
    assert "3 copied by run run-1" in out and "inventory loaded" in out and "finished" in out
    assert vault_flow.write_ledger(after, VAULT) == 0  # the ledger holds every rebuilt row as it is


def test_a_copy_the_ledger_did_not_record_is_recognised_by_its_metadata(vault_env, emulator):  # noqa: F811
    ids = [emulator.add_archive(VAULT, payload(MiB + n, n), f"f{n}.bin") for n in range(2)]
    setup = make_setup(vault_env, emulator)
    assert vault_flow.take_inventory(setup, VAULT).state == "loaded"
    assert vault_flow.write_ledger(setup, VAULT) == 2  # the inventory's archives, NEW
    vault_flow.request_retrievals(setup, VAULT)
    vault_flow.transfer_archives(setup, VAULT, run_id="run-1")  # copied; the process dies before the ledger write

    fresh = _lose_the_catalog(setup.catalog)
    counts = rebuild(fresh, s3_client(), BUCKET, "archive", vault_prefix="vaults")

    assert counts["vault_copies_from_metadata"] == 2
    rows = {r["archiveId"]: r for r in vault_flow.vault_report(make_setup(vault_env, emulator), VAULT)}
    assert {a: r["status"] for a, r in rows.items()} == {a: "DONE" for a in ids}
    assert all("holds this archive (its metadata names it)" in r["messages"][-1] for r in rows.values())
