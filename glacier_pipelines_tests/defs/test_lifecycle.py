"""lifecycle_rules and server_side_archives materialized through Dagster on in-process moto, and the move CLI.

moto stores lifecycle rules but never applies them: these tests check the rules written to
the bucket (and that other tools' rules survive), not S3's scheduler.
"""

from __future__ import annotations

import hashlib
import json

import dagster as dg
import pytest
from botocore.exceptions import ClientError

from glacier_pipelines_tests.conftest import BUCKET, materializations, s3_client

RULES = """
[[tenants.lab.rules]]
name = "trash"
prefix = "trash/"
transitions = [{days = 30, storage_class = "GLACIER"}, {days = 180, storage_class = "DEEP_ARCHIVE"}]
expiration_days = 3650

[[tenants.lab.rules]]
name = "uploads"
abort_incomplete_multipart_days = 7
"""
BACKSTOP = "glacier-pipelines:restored-copies"  # restored copies expire (issue #17); see test_restored_copies.py
FOREIGN = {"ID": "logs-expiry", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 30}}


@pytest.fixture
def declared(archive, tmp_path, monkeypatch):
    """GLACIER_LIFECYCLE_CONFIG pointing at a file the test rewrites; copies above 5 MiB are multipart."""
    path = tmp_path / "lifecycle.toml"
    path.write_text(RULES)
    monkeypatch.setenv("GLACIER_LIFECYCLE_CONFIG", str(path))
    monkeypatch.setenv("GLACIER_COPY_THRESHOLD_MB", "5")
    monkeypatch.setenv("GLACIER_COPY_PART_SIZE_MB", "5")
    return path


def bucket_rules() -> dict[str, dict]:
    return {r["ID"]: r for r in s3_client().get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]}


def apply_rules(archive, instance, **config) -> dg.ExecuteInProcessResult:
    result = (
        archive.defs()
        .resolve_job_def("lifecycle_job")
        .execute_in_process(
            instance=instance, raise_on_error=False, run_config={"ops": {"lifecycle_rules": {"config": config}}} if config else None
        )
    )
    return result


def run_move(archive, instance, tenant="lab", **config) -> dg.ExecuteInProcessResult:
    if not instance.has_dynamic_partition("tenants", tenant):
        instance.add_dynamic_partitions("tenants", [tenant])
    return (
        archive.defs()
        .resolve_job_def("move_job")
        .execute_in_process(
            partition_key=tenant, instance=instance, raise_on_error=False, run_config={"ops": {"server_side_archives": {"config": config}}}
        )
    )


def test_lifecycle_assets_are_in_the_code_location():
    from glacier_pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    rules, moves = graph.get(dg.AssetKey("lifecycle_rules")), graph.get(dg.AssetKey("server_side_archives"))
    assert rules.partitions_def is None and moves.partitions_def.name == "tenants"
    assert rules.group_name == moves.group_name == "lifecycle"
    assert {"lifecycle_job", "move_job"} <= {j.name for j in defs.resolve_all_job_defs()}
    assert "lifecycle" in defs.resources


def test_rules_applied_reapplied_merged_and_removed(archive, instance, declared):
    s3_client().put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [FOREIGN]})

    first = apply_rules(archive, instance)
    assert first.success
    m = materializations(first)["lifecycle_rules"]
    assert (m["added"], m["changed"], m["removed"], m["foreign_kept"], m["written"]) == (3, 0, 0, 1, True)  # + the restored-copies backstop
    assert (
        "| archive-test | `glacier-pipelines:lab:trash` | added | archive/lab/trash/: GLACIER after 30 d; DEEP_ARCHIVE after 180 d;"
        " expire after 3650 d |" in m["diff"]
    )
    rules = bucket_rules()
    assert set(rules) == {"logs-expiry", "glacier-pipelines:lab:trash", "glacier-pipelines:lab:uploads", BACKSTOP}
    assert rules["logs-expiry"] == FOREIGN  # another tool's rule, kept as it was
    assert rules["glacier-pipelines:lab:trash"]["Transitions"] == [
        {"Days": 30, "StorageClass": "GLACIER"},
        {"Days": 180, "StorageClass": "DEEP_ARCHIVE"},
    ]
    assert rules["glacier-pipelines:lab:uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert rules["glacier-pipelines:lab:uploads"]["Filter"] == {"Prefix": "archive/lab/"}

    again = materializations(apply_rules(archive, instance))["lifecycle_rules"]  # re-applied: nothing to do, nothing written
    assert (again["added"], again["changed"], again["removed"], again["unchanged"], again["written"], again["status"]) == (
        0,
        0,
        0,
        3,
        False,
        "unchanged",
    )

    declared.write_text(RULES.split('[[tenants.lab.rules]]\nname = "uploads"')[0].replace("3650", "4000"))
    third = materializations(apply_rules(archive, instance))["lifecycle_rules"]
    assert (third["changed"], third["removed"], third["foreign_kept"]) == (1, 1, 1)
    rules = bucket_rules()
    assert set(rules) == {"logs-expiry", "glacier-pipelines:lab:trash", BACKSTOP}  # the rule dropped from the file left the bucket
    assert rules["glacier-pipelines:lab:trash"]["Expiration"] == {"Days": 4000}

    declared.write_text("")  # nothing declared: every declared rule goes, the foreign one and the backstop stay
    apply_rules(archive, instance)
    assert set(bucket_rules()) == {"logs-expiry", BACKSTOP}

    s3_client().delete_bucket_lifecycle(Bucket=BUCKET)
    declared.write_text(RULES)
    apply_rules(archive, instance)
    declared.write_text("")  # the declared rules go; the backstop is the project's own and stays
    assert materializations(apply_rules(archive, instance))["lifecycle_rules"]["removed"] == 2
    assert set(bucket_rules()) == {BACKSTOP}


def test_dry_run_shows_the_diff_and_writes_nothing(archive, instance, declared):
    m = materializations(apply_rules(archive, instance, dry_run=True))["lifecycle_rules"]
    assert (m["added"], m["written"], m["status"]) == (3, False, "dry run: nothing written")
    with pytest.raises(ClientError, match="NoSuchLifecycleConfiguration"):
        s3_client().get_bucket_lifecycle_configuration(Bucket=BUCKET)


def test_no_declaration_leaves_the_bucket_alone(archive, instance):
    s3_client().put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [FOREIGN]})
    m = materializations(apply_rules(archive, instance))["lifecycle_rules"]
    assert m["written"] is False and "GLACIER_LIFECYCLE_CONFIG unset" in m["status"]
    assert list(bucket_rules()) == ["logs-expiry"]


def test_a_bad_declaration_fails_with_every_problem_named(archive, instance, declared):
    declared.write_text('[[tenants.lab.rules]]\nname = "x"\nprefix = "../up"\n')
    result = apply_rules(archive, instance)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert "must not contain '..' segments" in failure.description and "needs at least one of" not in failure.description


def test_server_side_archives_moves_a_prefix_with_auditable_metadata(archive, instance, declared):
    data = {f"archive/lab/app/{i}.txt": f"file {i}".encode() * 20 for i in range(3)}
    for key, body in data.items():
        s3_client().put_object(Bucket=BUCKET, Key=key, Body=body)
    result = run_move(archive, instance, source=f"s3://{BUCKET}/archive/lab/app/", verification="stream")
    assert result.success
    m = materializations(result)["server_side_archives"]
    assert (m["objects_moved"], m["objects_skipped"], m["objects_failed"], m["bytes_moved"]) == (3, 0, 0, sum(map(len, data.values())))
    assert (m["storage_class"], m["verification"], m["tenant"]) == ("DEEP_ARCHIVE", "stream", "lab")
    assert m["estimated_cost_usd"] > 0 and "minimum storage duration of DEEP_ARCHIVE" in m["cost"]
    assert "| MOVED |" in m["objects"] and m["report"]["moved"] == 3
    for key, body in data.items():
        assert s3_client().head_object(Bucket=BUCKET, Key=key)["StorageClass"] == "DEEP_ARCHIVE"
        assert archive.catalog().find_object("lab", "SHA-256", hashlib.sha256(body).hexdigest()).key == key
    again = materializations(run_move(archive, instance, source=f"s3://{BUCKET}/archive/lab/app/"))["server_side_archives"]
    assert (again["objects_moved"], again["objects_skipped"]) == (0, 3)


def test_server_side_archives_fails_clearly_for_a_missing_object_or_another_tenants_prefix(archive, instance, declared):
    missing = run_move(archive, instance, source=f"s3://{BUCKET}/archive/lab/nothing-here")
    assert not missing.success
    text = missing.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert text == f"s3://{BUCKET}/archive/lab/nothing-here does not exist: no object there and none under it"
    foreign = run_move(archive, instance, source=f"s3://{BUCKET}/archive/museum/")
    assert "tenant lab may not move" in foreign.get_step_failure_events()[0].step_failure_data.user_failure_data.description


def test_move_cli_estimates_then_moves_in_place(archive, declared, tmp_path, monkeypatch, capsys):
    from glacier_pipelines import cli

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    (tmp_path / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    body = b"moved by the command line"
    s3_client().put_object(Bucket=BUCKET, Key="archive/lab/cli/one.txt", Body=body)
    url = f"s3://{BUCKET}/archive/lab/cli/one.txt"

    assert cli.main(["move", "--tenant", "lab", url, "--dry-run", "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert planned["dryRun"] and planned["planned"] == 1 and planned["estimate"]["total"] > 0
    assert s3_client().head_object(Bucket=BUCKET, Key="archive/lab/cli/one.txt").get("StorageClass") is None

    code = cli.main(
        [
            "move",
            "--tenant",
            "lab",
            url,
            "--storage-class",
            "glacier",
            "--verify",
            "stream",
            "--checksum",
            f"MD5:{hashlib.md5(body).hexdigest()}",
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert (summary["moved"], summary["runSuccess"], summary["storageClass"]) == (1, True, "GLACIER")
    assert summary["objects"][0]["verifiedAgainst"][0] == {
        "reference": "announced",
        "algorithm": "MD5",
        "checksum": hashlib.md5(body).hexdigest(),
    }
    assert "estimated cost" in captured.err and "copy requests into GLACIER" in captured.err
    assert s3_client().head_object(Bucket=BUCKET, Key="archive/lab/cli/one.txt")["StorageClass"] == "GLACIER"

    assert cli.main(["move", "--tenant", "lab", f"s3://{BUCKET}/archive/museum/x"]) == 2
    assert "glacier-pipelines move: tenant lab may not move" in capsys.readouterr().err


def test_trash_cli_and_a_bad_declaration_give_messages_not_tracebacks(archive, declared, monkeypatch, capsys):
    from glacier_pipelines import cli
    from glacier_pipelines_tests.flows.test_moves import _archive_files

    monkeypatch.setenv("GLACIER_STORAGE_CLASS", "STANDARD")
    _archive_files(archive, {"gone": b"deleted by its owner"})
    assert cli.main(["trash", "--tenant", "lab", "gone", "unknown", "--json"]) == 1
    rows = {r["requestId"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["gone"]["status"] == "MOVED" and "/archive/lab/trash/dir/" in rows["gone"]["destination"]
    assert rows["unknown"] == {
        "requestId": "unknown",
        "status": "FAILED",
        "messages": ["tenant lab has no archived file with request id 'unknown'"],
    }
    declared.write_text("[tenants.lab]\ntrash_prefix = '../x'\n")
    assert cli.main(["move", "--tenant", "lab", f"s3://{BUCKET}/archive/lab/"]) == 2
    err = capsys.readouterr().err
    assert "glacier-pipelines move: " in err and "must not contain '..' segments" in err and "Traceback" not in err
