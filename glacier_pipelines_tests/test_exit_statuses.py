"""Exit status = outcome (README, "Exit statuses"): 0 all done, 1 a run or an item failed or a transient fault, 2 refused
input or configuration; every fault ends as one line on stderr, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import botocore.exceptions as bce
import dagster as dg
import pytest

from glacier_pipelines import cli
from glacier_pipelines_tests.conftest import BUCKET

UNREACHABLE_AMQP = "amqp://guest:s3cr3t-pw@127.0.0.1:1/%2F"


@pytest.fixture
def env(archive, tmp_path, monkeypatch):
    """The archive environment with its own Dagster home (restored after the test)."""
    home = tmp_path / "dagster-home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return archive


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "nothing said on stderr"
    last = err[-1]
    assert "Traceback" not in "\n".join(err)
    return last


def _pending(archive) -> dict[str, str]:
    return {rid: row["status"] for rid, row in archive.report().items()}


def _responses(archive) -> list:
    with archive.transport() as transport:
        return transport.read_responses(100)


def _tenant_partitions() -> list[str]:
    with dg.DagsterInstance.get() as instance:
        return instance.get_dynamic_partitions("tenants")


# ---- process ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_process_exits_0_when_everything_is_archived(env, capsys):
    data = b"archived by process"
    env.submit(env.request("lab", env.file("a", data), data, requestId="a"))
    assert cli.main(["process", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["statuses"] == {"SUCCESS": 1} and summary["brokerUnreachable"] is None


@pytest.mark.slow
def test_process_with_an_unreachable_broker_runs_the_catalog_work_and_exits_1(env, monkeypatch, capsys):
    data = b"already in the catalog"
    env.submit(env.request("lab", env.file("a", data), data, requestId="a"))
    monkeypatch.setenv("GLACIER_REQUEST_TRANSPORT", "amqp")
    monkeypatch.setenv("GLACIER_AMQP_URL", UNREACHABLE_AMQP)
    assert cli.main(["process"]) == 1
    line = _one_line(capsys)
    assert "the AMQP broker at amqp://guest:***@127.0.0.1:1/%2F is unreachable" in line
    assert line.endswith("the requests stay queued for the next pass") and "s3cr3t-pw" not in line
    # the catalog's pending work was done; its response waits in the outbox for a pass that reaches the broker
    assert _pending(env) == {"a": "SUCCESS"}
    assert len(env.catalog().unpublished_responses(10)) == 1


@pytest.mark.parametrize(
    "code, status, says",
    [
        ("NoSuchBucket", 404, "fix GLACIER_BUCKET"),
        ("404", 404, "fix GLACIER_BUCKET"),
        ("InvalidAccessKeyId", 403, "fix the AWS credentials"),
        ("SignatureDoesNotMatch", 403, "fix the AWS credentials"),
        ("AccessDenied", 403, "fix the AWS credentials"),
        ("403", 403, "fix the AWS credentials"),
    ],
)
def test_process_stops_at_once_with_exit_2_when_s3_refuses_the_bucket_or_credentials(env, monkeypatch, capsys, code, status, says):
    from glacier_pipelines.resources.archive import ArchiveStoreResource

    data = b"must stay pending"
    env.submit(env.request("lab", env.file("a", data), data, requestId="a"))
    error = bce.ClientError({"Error": {"Code": code, "Message": "refused"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "HeadBucket")

    def refusing_client(self):
        return SimpleNamespace(head_bucket=lambda **_: (_ for _ in ()).throw(error))

    monkeypatch.setattr(ArchiveStoreResource, "client", refusing_client)
    assert cli.main(["process"]) == 2
    line = _one_line(capsys)
    assert says in line and "no request was touched" in line
    assert _pending(env) == {"a": "PENDING"} and _responses(env) == []


def test_process_with_a_missing_bucket_on_s3_exits_2_and_leaves_requests_pending(env, monkeypatch, capsys):
    data = b"must stay pending"
    env.submit(env.request("lab", env.file("a", data), data, requestId="a"))
    monkeypatch.setenv("GLACIER_BUCKET", "no-such-bucket-here")
    assert cli.main(["process"]) == 2
    assert "bucket 'no-such-bucket-here' does not exist: fix GLACIER_BUCKET" in _one_line(capsys)
    monkeypatch.setenv("GLACIER_BUCKET", BUCKET)
    assert _pending(env) == {"a": "PENDING"} and _responses(env) == []
    assert "lab" not in _tenant_partitions()


def test_process_with_a_tenant_bucket_missing_exits_2_naming_the_tenant_and_leaves_requests_pending(env, monkeypatch, capsys, tmp_path):
    data = b"must stay pending too"
    env.submit(env.request("lab", env.file("a", data), data, requestId="a"))
    config = tmp_path / "tenants.toml"
    config.write_text('[tenants.lab]\nbucket = "lab-bucket-that-does-not-exist"\n')
    monkeypatch.setenv("GLACIER_TENANTS_CONFIG", str(config))
    assert cli.main(["process"]) == 2
    line = _one_line(capsys)
    assert "lab" in line and "lab-bucket-that-does-not-exist" in line and "does not exist" in line
    monkeypatch.delenv("GLACIER_TENANTS_CONFIG")
    assert _pending(env) == {"a": "PENDING"} and _responses(env) == []


def test_process_with_s3_unreachable_exits_1_and_leaves_requests_pending(env, monkeypatch, capsys):
    from glacier_pipelines.resources.archive import ArchiveStoreResource

    data = b"must stay pending"
    env.submit(env.request("lab", env.file("a", data), data, requestId="a"))

    def unreachable(self):
        return SimpleNamespace(
            head_bucket=lambda **_: (_ for _ in ()).throw(bce.EndpointConnectionError(endpoint_url="http://127.0.0.1:1/"))
        )

    monkeypatch.setattr(ArchiveStoreResource, "client", unreachable)
    assert cli.main(["process"]) == 1
    line = _one_line(capsys)
    assert "S3 is unreachable" in line and "stay pending" in line
    assert _pending(env) == {"a": "PENDING"} and _responses(env) == []


@pytest.mark.parametrize("tenant", ["Not A Tenant", "../etc", "x" * 64])
def test_process_refuses_an_invalid_tenant_before_it_becomes_a_partition(env, capsys, tenant):
    assert cli.main(["process", "--tenant", tenant]) == 2
    assert "is not valid" in _one_line(capsys)
    assert _tenant_partitions() == []


def test_process_refuses_a_tenant_not_allowed_even_with_pending_work(env, monkeypatch, capsys):
    data = b"from before the allow-list"
    env.submit(env.request("other", env.file("o", data), data, requestId="o"))
    monkeypatch.setenv("GLACIER_TENANTS", "lab")
    assert cli.main(["process", "--tenant", "other"]) == 2
    assert "tenant 'other' is not among the allowed tenants (GLACIER_TENANTS=lab)" in _one_line(capsys)
    assert _tenant_partitions() == [] and _pending(env) == {"o": "PENDING"}


@pytest.fixture
def amqp_url():
    import os

    import pika

    url = os.environ.get("GLACIER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
    pika.BlockingConnection(pika.URLParameters(url)).close()  # the broker must be there: fail, never skip
    return url


@pytest.mark.amqp
def test_process_with_a_broker_refusing_the_login_exits_2(env, monkeypatch, capsys, amqp_url):
    monkeypatch.setenv("GLACIER_REQUEST_TRANSPORT", "amqp")
    host = amqp_url.split("@", 1)[1]
    monkeypatch.setenv("GLACIER_AMQP_URL", f"amqp://guest:wrong-pw@{host}")
    assert cli.main(["process"]) == 2
    line = _one_line(capsys)
    assert "refused the login (fix the user or password in GLACIER_AMQP_URL)" in line and "wrong-pw" not in line
    assert _tenant_partitions() == []


# ---- restore ----------------------------------------------------------------------------------------------------


def _restore(*selectors: str) -> list[str]:
    args = ["restore", "--tenant", "lab", "--days", "1", "--requester", "ops@example.org", "--json"]
    for s in selectors:
        args += ["--request-id", s]
    return args


@pytest.mark.slow
def test_restore_exits_2_when_every_file_is_refused(env, capsys):
    assert cli.main(_restore("unknown-1", "unknown-2")) == 2
    captured = capsys.readouterr()
    assert "all 2 file(s) refused" in captured.err
    assert {f["status"] for f in json.loads(captured.out)["files"]} == {"REFUSED"}


@pytest.mark.slow
def test_restore_exits_0_when_all_are_restored_and_1_when_some_are_refused(env, instance, monkeypatch, capsys):
    monkeypatch.setenv("GLACIER_STORAGE_CLASS", "STANDARD")  # readable without a restore: served at once
    data = b"comes back"
    env.submit(env.request("lab", env.file("k", data), data, requestId="keep"))
    assert env.run("lab", instance).success
    assert cli.main(_restore("keep")) == 0
    capsys.readouterr()
    assert cli.main(_restore("keep", "unknown")) == 1
    statuses = {f["status"] for f in json.loads(capsys.readouterr().out)["files"]}
    assert "REFUSED" in statuses and len(statuses) == 2


# ---- submit, responses, trash -----------------------------------------------------------------------------------


def test_submit_exits_2_for_a_missing_file_and_1_when_the_broker_is_unreachable(env, tmp_path, monkeypatch, capsys):
    assert cli.main(["submit", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl" in _one_line(capsys)
    lines = tmp_path / "ok.jsonl"
    lines.write_text(json.dumps({"tenant": "lab", "requestId": "r"}) + "\n")
    monkeypatch.setenv("GLACIER_REQUEST_TRANSPORT", "amqp")
    monkeypatch.setenv("GLACIER_AMQP_URL", UNREACHABLE_AMQP)
    assert cli.main(["submit", str(lines)]) == 1
    line = _one_line(capsys)
    assert "is unreachable" in line and "s3cr3t-pw" not in line


def test_submit_exits_2_when_every_line_is_refused_and_1_when_some_are(env, tmp_path, capsys):
    lines = tmp_path / "r.jsonl"
    lines.write_text("not json\n[1, 2]\n")
    assert cli.main(["submit", str(lines)]) == 2
    assert "submitted 0 request(s); 2 line(s) refused" in capsys.readouterr().out
    lines.write_text(json.dumps({"tenant": "lab", "requestId": "r"}) + "\nnot json\n")
    assert cli.main(["submit", str(lines)]) == 1
    assert "submitted 1 request(s); 1 line(s) refused" in capsys.readouterr().out
    lines.write_text(json.dumps({"tenant": "lab", "requestId": "r2"}) + "\n")
    assert cli.main(["submit", str(lines)]) == 0
    with env.transport() as transport:
        assert len(transport.receive(10)) == 2  # the valid lines, each once


def test_responses_exits_1_when_the_broker_is_unreachable(env, monkeypatch, capsys):
    monkeypatch.setenv("GLACIER_REQUEST_TRANSPORT", "amqp")
    monkeypatch.setenv("GLACIER_AMQP_URL", UNREACHABLE_AMQP)
    assert cli.main(["responses"]) == 1
    assert "is unreachable" in _one_line(capsys)


def test_trash_exits_2_when_every_request_id_is_refused(env, capsys):
    assert cli.main(["trash", "--tenant", "lab", "nope-1", "nope-2", "--json"]) == 2
    rows = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in rows] == ["FAILED", "FAILED"] and all(r["messages"] for r in rows)


def test_audit_of_an_unknown_request_exits_2(env, capsys):
    assert cli.main(["audit", "nothing-like-it"]) == 2
    assert "no request 'nothing-like-it'" in _one_line(capsys)


# ---- configuration faults ---------------------------------------------------------------------------------------


def test_a_missing_dagster_home_exits_2_naming_it(env, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "not-there"))
    assert cli.main(["process"]) == 2
    line = _one_line(capsys)
    assert "DAGSTER_HOME=" in line and "is not an existing folder" in line
    assert not (tmp_path / "not-there").exists()


def test_a_relative_dagster_home_exits_2_naming_it(env, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", "relative/home")
    assert cli.main(["process"]) == 2
    assert "DAGSTER_HOME" in _one_line(capsys)


@pytest.mark.parametrize(
    "url, says",
    [
        ("postgresql+nosuchdriver://u:pw-secret@h/db", "is not a usable catalog URL"),
        ("not a url at all", "GLACIER_CATALOG_URL"),
    ],
)
def test_a_malformed_catalog_url_exits_2_naming_it(env, monkeypatch, capsys, url, says):
    monkeypatch.setenv("GLACIER_CATALOG_URL", url)
    assert cli.main(["report"]) == 2
    line = _one_line(capsys)
    assert says in line and "GLACIER_CATALOG_URL" in line and "pw-secret" not in line


def test_an_unexpected_error_is_logged_in_full_and_summarised_with_exit_1(env, monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("something nobody foresaw")

    monkeypatch.setitem(cli._COMMANDS, "report", broken)
    assert cli.main(["report"]) == 1
    line = _one_line(capsys)
    log = env.home / "logs" / "glacier-pipelines.log"
    assert line == f"glacier-pipelines report: unexpected error RuntimeError: something nobody foresaw (full traceback in {log})"
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "in broken" in text


def test_the_executor_config_file_faults_name_the_variable(tmp_path, monkeypatch):
    from glacier_pipelines.defs import executors

    monkeypatch.setenv("GLACIER_EXECUTOR", "in_process")
    cases = {"missing.yaml": "cannot be read", "bad.yaml": "not valid YAML at line 3", "shape.yaml": "expected a mapping"}
    (tmp_path / "bad.yaml").write_text("execution:\n  config: [unclosed\n")
    (tmp_path / "shape.yaml").write_text("execution: in_process\n")
    for name, says in cases.items():
        monkeypatch.setenv("GLACIER_EXECUTOR_CONFIG", str(tmp_path / name))
        with pytest.raises(ValueError, match="GLACIER_EXECUTOR_CONFIG=") as info:
            executors.executor_from_env()
        assert says in str(info.value)
    (tmp_path / "good.yaml").write_text("execution:\n  config: {}\n")
    monkeypatch.setenv("GLACIER_EXECUTOR_CONFIG", str(tmp_path / "good.yaml"))
    assert executors.executor_from_env().name == "in_process"


@pytest.mark.slow
def test_a_malformed_executor_config_file_exits_2_from_the_console_script(tmp_path):
    import os

    bad = tmp_path / "executor.yaml"
    bad.write_text("execution:\n  config: [unclosed\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GLACIER_", "DAGSTER_"))}
    env.update({"GLACIER_HOME": str(tmp_path / "home"), "GLACIER_EXECUTOR": "in_process", "GLACIER_EXECUTOR_CONFIG": str(bad)})
    script = str(Path(sys.executable).with_name("glacier-pipelines"))
    proc = subprocess.run([script, "process"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"glacier-pipelines process: GLACIER_EXECUTOR_CONFIG={bad}: not valid YAML at line 3")


# ---- check_bucket alone ------------------------------------------------------------------------------------------


def _store(raises: Exception):
    return SimpleNamespace(bucket="b", client=lambda: SimpleNamespace(head_bucket=lambda **_: (_ for _ in ()).throw(raises)))


@pytest.mark.parametrize(
    "exc, kind",
    [
        (bce.NoCredentialsError(), cli.ConfigFault),
        (bce.ClientError({"Error": {"Code": "ExpiredToken"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "HeadBucket"), cli.ConfigFault),
        (bce.ClientError({"Error": {"Code": "503"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "HeadBucket"), cli.TransientFault),
        (bce.ConnectTimeoutError(endpoint_url="http://s3"), cli.TransientFault),
    ],
)
def test_check_bucket_tells_configuration_from_transient_faults(exc, kind):
    with pytest.raises(kind):
        cli.check_bucket(_store(exc))
    assert cli._classify(kind("x"))[0] == (2 if kind is cli.ConfigFault else 1)


# ---- the storage port's error ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cause, status, says",
    [
        (bce.EndpointConnectionError(endpoint_url="http://s3"), 1, "S3 is unreachable"),
        (bce.ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "PutObject"), 1, "try again later"),
        (bce.ClientError({"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "PutObject"), 2, "AccessDenied"),
    ],
)
def test_a_store_error_exits_by_what_the_store_raised(cause, status, says):
    from glacier_pipelines.core.objectstore.errors import StoreError

    got, line = cli._classify(StoreError.wrap(cause, "PutObject", "k"))
    assert got == status and says in line, line
