"""S3-side faults, injected by a proxy between the product's S3 client and moto in server mode."""

from __future__ import annotations

import pytest

from glacier_pipelines.core.faults import ArchiveFault
from glacier_pipelines_tests.faults.conftest import MiB
from glacier_pipelines_tests.faults.s3_proxy import FaultProxy

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def _mixed_batch(env, small: int = 3, large: list[int] | None = None) -> None:
    """A batch of small files (staged, one PutObject each) and large ones (multipart, 5 MiB parts)."""
    reqs = []
    for i in range(small):
        data = env.data(1000 + 37 * i)
        reqs.append(env.request(f"small-{i}", env.file(f"small-{i}", data), data))
    for i, size in enumerate(large if large is not None else [11 * MiB]):
        data = env.data(size)
        reqs.append(env.request(f"large-{i}", env.file(f"large-{i}", data), data))
    env.submit(*reqs)


@pytest.fixture
def proxy(moto_endpoint):
    with FaultProxy(moto_endpoint) as p:
        yield p


def test_slowdown_bursts_are_retried(fault_env, proxy, reliability):
    _mixed_batch(fault_env, small=3, large=[6 * MiB])
    bursts = [proxy.inject("PutObject", "slowdown", times=2), proxy.inject("UploadPart", "slowdown", times=1, skip=1)]
    batch, verified, stored, (checked, mismatches) = fault_env.run_batch(fault_env.setup(proxy.url))
    assert all(b.injected == b.times for b in bursts), [(b.op, b.injected) for b in bursts]
    assert stored.stored == 4 and not mismatches
    reliability("S3 503 SlowDown bursts (PutObject, UploadPart)", proxy.injected, fault_env.check(), side="S3")


def test_500_on_the_kth_part_is_retried(fault_env, proxy, reliability):
    _mixed_batch(fault_env, small=1, large=[11 * MiB])  # 3 parts
    second = proxy.inject("UploadPart", "error500", skip=1, times=1)
    fault_env.run_batch(fault_env.setup(proxy.url))
    assert second.injected == 1 and proxy.seen["UploadPart"] == 4  # 3 parts + the retried second
    reliability("S3 500 InternalError on the 2nd UploadPart", second.injected, fault_env.check(), side="S3")


def test_500_on_every_part_keeps_the_request_for_the_next_pass_and_aborts_its_upload(fault_env, proxy, reliability):
    """A 5xx is transient (issue #21): retries exhausted, the request keeps its place, the step fails loudly; the next pass stores it."""
    _mixed_batch(fault_env, small=2, large=[6 * MiB])
    always = proxy.inject("UploadPart", "error500", times=None)
    with pytest.raises(ArchiveFault, match="transient") as fault:
        fault_env.run_batch(fault_env.setup(proxy.url, max_attempts=3))
    assert fault.value.kind == "transient"
    assert proxy.seen["AbortMultipartUpload"] >= 1
    row = fault_env.catalog().get_request(fault_env.tenant, "large-0")
    assert row.status == "CLAIMED" and fault_env.catalog().unpublished_responses() == []  # nobody was told ERROR
    proxy.clear()
    fault_env.run_batch(fault_env.setup(proxy.url), run_id="run-2")
    reliability(
        "S3 500 on every UploadPart (retries exhausted), then S3 well again",
        always.injected,
        fault_env.check(),
        side="S3",
        outcome="the request keeps its place (CLAIMED, upload aborted, run failed); the next pass stores it: SUCCESS",
    )


def test_s3_unreachable_for_a_pass_then_back_loses_and_fails_nothing(fault_env, reliability):
    """Connection refused for a whole pass: no request ends ERROR, none is answered; the pass after stores them all."""
    _mixed_batch(fault_env, small=3, large=[6 * MiB, 7 * MiB])
    down = fault_env.setup("http://127.0.0.1:9", max_attempts=1, connect_timeout=1)
    with pytest.raises(ArchiveFault) as fault:
        fault_env.run_batch(down)
    assert fault.value.kind == "transient" and "EndpointConnectionError" in str(fault.value)
    counts = fault_env.catalog().status_counts(fault_env.tenant)
    assert "ERROR" not in counts and fault_env.catalog().unpublished_responses() == []
    fault_env.run_batch(fault_env.setup(), run_id="run-2")
    tally = fault_env.check()
    assert tally.statuses == {"SUCCESS": 5}
    reliability(
        "S3 unreachable (connection refused) for a whole pass, then back",
        1,
        tally,
        side="S3",
        outcome="the pass fails loudly with every request kept in place; the next pass archives all: SUCCESS, no ERROR sent",
    )


@pytest.mark.parametrize("fault, bucket", [("missing bucket", "no-such-bucket-here"), ("refused credentials", None)])
def test_configuration_faults_stop_the_batch_and_keep_every_request(fault_env, reliability, fault, bucket):
    """Credentials refused or bucket missing: no retry can help, so the step stops at once naming the setting; nothing is lost."""
    import dataclasses

    import boto3

    _mixed_batch(fault_env, small=2, large=[6 * MiB])
    setup = fault_env.setup()
    if bucket:
        setup = dataclasses.replace(setup, upload=dataclasses.replace(setup.upload, bucket=bucket))
    else:  # moto server refuses an access key it does not know only when told to; the error S3 answers is what matters
        s3 = boto3.session.Session().client(
            "s3", endpoint_url=fault_env.endpoint, region_name="us-east-1", aws_access_key_id="AKIAWRONG", aws_secret_access_key="wrong"
        )
        from botocore.exceptions import ClientError

        def refuse(**_):
            raise ClientError(
                {
                    "Error": {"Code": "InvalidAccessKeyId", "Message": "The AWS Access Key Id you provided does not exist"},
                    "ResponseMetadata": {"HTTPStatusCode": 403},
                },
                "CreateMultipartUpload",
            )

        s3.create_multipart_upload = refuse
        setup = dataclasses.replace(setup, s3=s3)
    with pytest.raises(ArchiveFault) as stopped:
        fault_env.run_batch(setup)
    assert stopped.value.kind == "configuration"
    assert ("GLACIER_BUCKET" if bucket else "AWS_ACCESS_KEY_ID") in str(stopped.value)
    assert "ERROR" not in fault_env.catalog().status_counts(fault_env.tenant)
    fault_env.run_batch(fault_env.setup(), run_id="run-2")  # the operator fixed the setting
    reliability(
        f"S3 configuration fault ({fault}) for a pass, then fixed",
        1,
        fault_env.check(),
        side="S3",
        outcome="the step stops at once naming the setting; every request kept; SUCCESS once fixed",
    )


def test_connection_reset_mid_part_is_retried(fault_env, proxy, reliability):
    _mixed_batch(fault_env, small=2, large=[11 * MiB, 6 * MiB])
    resets = [proxy.inject("UploadPart", "reset", skip=1, times=2), proxy.inject("PutObject", "reset", times=1)]
    fault_env.run_batch(fault_env.setup(proxy.url))
    assert [r.injected for r in resets] == [2, 1]
    reliability("S3 connection reset mid-body (UploadPart, PutObject)", proxy.injected, fault_env.check(), side="S3")


@pytest.mark.alone  # a 0.5 s read timeout that only the injected delay may exceed
def test_complete_multipart_upload_timing_out_once(fault_env, proxy, reliability):
    """S3 completes the upload but the answer comes after the client's read timeout; the client retries."""
    _mixed_batch(fault_env, small=1, large=[6 * MiB])
    late = proxy.inject("CompleteMultipartUpload", "delay", delay=1.5, times=1)
    fault_env.run_batch(fault_env.setup(proxy.url, read_timeout=0.5))
    assert late.injected == 1
    reliability("S3 CompleteMultipartUpload answered after the client's read timeout (once)", late.injected, fault_env.check(), side="S3")


@pytest.mark.alone  # a 0.4 s read timeout that only the injected delays may exceed
def test_commit_answered_late_every_time(fault_env, proxy, reliability):
    """Every CompleteMultipartUpload and PutObject answer comes late, retries included, though S3 did the work."""
    _mixed_batch(fault_env, small=1, large=[6 * MiB])
    late = [
        proxy.inject("CompleteMultipartUpload", "delay", delay=0.8, times=None),
        proxy.inject("PutObject", "delay", delay=0.8, times=None),
    ]
    fault_env.run_batch(fault_env.setup(proxy.url, read_timeout=0.4, max_attempts=2))
    assert all(f.injected >= 2 for f in late), [(f.op, f.injected) for f in late]
    reliability(
        "S3 CompleteMultipartUpload and PutObject answered late on every attempt",
        proxy.injected,
        fault_env.check(),
        side="S3",
        outcome="S3 stored both; the client gave up; the object is found by its checksum",
    )


def test_checksum_reported_differently_is_caught_by_the_blocking_check(fault_env, proxy, monkeypatch, reliability):
    """S3 reports, on HEAD, a SHA-256 other than that of the bytes it stored: archive_job's blocking
    checksum_integrity check must fail and name every such object (here: all of them)."""
    import dagster as dg

    from glacier_pipelines.definitions import build_defs
    from glacier_pipelines.resources import resources_from_env

    _mixed_batch(fault_env, small=2, large=[6 * MiB])
    lie = proxy.inject("HeadObject", "checksum", times=None)
    monkeypatch.setenv("GLACIER_S3_ENDPOINT_URL", proxy.url)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("tenants", [fault_env.tenant])
        job = build_defs(resources_from_env()).resolve_job_def("archive_job")
        result = job.execute_in_process(partition_key=fault_env.tenant, instance=instance, raise_on_error=False)
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "checksum_integrity")
    assert check.passed is False and not result.success
    assert check.metadata["objects_checked"].value == 3 and check.metadata["mismatches"].value == 3
    table = check.metadata["mismatched_objects"].value
    assert all(o.url in table for o in fault_env.catalog().objects(fault_env.tenant)) and "checksum: S3 reports" in table
    # The check gates the answer: every request is answered ERROR with the check's reason, none was ever told SUCCESS.
    for sub in fault_env.submitted:
        sub.expect = "ERROR"
        assert "checksum_integrity failed" in fault_env.message(sub.request_id)
    assert {r["status"] for r in fault_env.catalog().unpublished_responses()} == {"ERROR"}
    reliability(
        "S3 reports another checksum for a stored object (HEAD)",
        lie.injected,
        fault_env.check(),
        side="S3",
        outcome="the blocking checksum_integrity check failed the run, naming all 3 objects; their requests answered ERROR",
    )
