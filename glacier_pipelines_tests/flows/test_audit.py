"""`glacier-pipelines audit`: the story of one file from the catalog and a real Dagster instance's event log."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from glacier_pipelines import cli
from glacier_pipelines_tests.conftest import BUCKET


@pytest.fixture
def story_home(archive, tmp_path, monkeypatch):
    """A DAGSTER_HOME instance with lab's archive run (one good file, one wrong checksum) and a restore of the good one."""
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    good = b"the file an auditor asks about" * 20
    archive.submit(
        archive.request("lab", archive.file("good", good), good, requestId="lab-good", owner="alice", session="s-2026"),
        {**archive.request("lab", archive.file("bad", b"bytes"), b"other bytes", requestId="lab-bad")},
    )
    with dg.DagsterInstance.get() as instance:
        archived = archive.run("lab", instance)
        restored = (
            archive.defs()
            .resolve_job_def("restore_job")
            .execute_in_process(
                partition_key="lab",
                instance=instance,
                run_config={
                    "ops": {
                        "restore_requests": {
                            "config": {"request_ids": ["lab-good"], "days": 2, "tier": "Standard", "requester": "ana@example.org"}
                        }
                    }
                },
            )
        )
    assert archived.success and restored.success
    return archived.run_id, restored.run_id


def _audit(capsys, *args):
    code = cli.main(["audit", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_audit_tells_the_story_of_a_stored_a_failed_and_an_unknown_request(story_home, capsys):
    archive_run, restore_run = story_home
    code, out, _ = _audit(capsys, "lab-good", "--json")
    assert code == 0
    story = json.loads(out)
    assert story["status"] == "SUCCESS" and story["tenant"] == "lab"
    assert story["received"]["owner"] == "alice" and story["received"]["session"] == "s-2026" and story["received"]["at"]
    assert story["batch"]["runId"] == archive_run and story["batch"]["batchId"]
    assert story["object"]["url"].startswith(f"s3://{BUCKET}/archive/lab/") and story["object"]["storageClass"] == "DEEP_ARCHIVE"
    assert set(story["object"]["checksums"]) == {"MD5", "SHA-256"}
    assert [r["status"] for r in story["responses"]] == ["SUCCESS"]
    runs = {r["runId"]: r for r in story["runs"]}
    assert set(runs) == {archive_run, restore_run}
    assert runs[archive_run]["job"] == "archive_job" and runs[archive_run]["status"] == "SUCCESS"
    assets = {m["asset"]: m for m in runs[archive_run]["materializations"]}
    assert {"ingest_batch", "verified_files", "glacier_objects"} <= set(assets)
    assert assets["ingest_batch"]["namesThisFile"] and assets["ingest_batch"]["metadata"]["batch_id"] == story["batch"]["batchId"]
    [integrity] = [c for c in runs[archive_run]["checks"] if c["check"] == "checksum_integrity"]
    assert integrity["passed"] and integrity["metadata"]["objects_checked"] == 1
    assert any(c["check"] == "restored_checksum_integrity" and c["passed"] for c in runs[restore_run]["checks"])
    [restore] = story["restores"]
    assert (restore["requester"], restore["tier"], restore["days"], restore["status"]) == ("ana@example.org", "Standard", 2, "READY")
    assert restore["estimatedCostUsd"] > 0 and restore["linkIssuedAt"] and restore["expiresAt"]
    assert restore["link"] and "Signature" not in restore["link"]  # only the redacted form of the pre-signed link
    assert story["failures"] == []

    code, text, _ = _audit(capsys, "lab-good", "--tenant", "lab")
    assert code == 0
    for expected in (
        "received",
        "alice",
        story["batch"]["batchId"],
        archive_run,
        "materialized glacier_objects",
        "check checksum_integrity on glacier_objects: PASSED",
        "DEEP_ARCHIVE",
        "ana@example.org: Standard, 2 day(s)",
        "READY",
    ):
        assert expected in text, expected
    assert "Signature" not in text

    # A failed request tells its failure.
    code, out, _ = _audit(capsys, "lab-bad", "--json")
    story = json.loads(out)
    assert code == 0 and story["status"] == "ERROR" and story["object"] is None
    assert story["failures"] and "checksum" in story["failures"][0].lower()
    code, text, _ = _audit(capsys, "lab-bad")
    assert "failure" in text and story["failures"][0] in text

    # Another tenant's id and an unknown id get a clear error and a non-zero exit.
    code, out, err = _audit(capsys, "lab-good", "--tenant", "museum")
    assert code != 0 and out == "" and "no request 'lab-good' for tenant 'museum'" in err
    code, out, err = _audit(capsys, "nobody", "--json")
    assert code != 0 and out == "" and "no request 'nobody'" in err
