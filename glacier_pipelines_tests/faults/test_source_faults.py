"""Source-side faults from a scripted HTTP source: resets, truncated bodies, stalls, wrong checksums.

A fault that strikes once is survived (the fetch is retried and the file archived); one that
strikes on every attempt fails its request with a message, and leaves nothing in the bucket
(an upload started by the failed attempt is aborted).
"""

from __future__ import annotations

import pytest

from glacier_pipelines_tests.faults.conftest import MiB
from glacier_pipelines_tests.faults.source_server import ScriptedSource

pytestmark = [pytest.mark.faults, pytest.mark.slow]


@pytest.fixture
def source():
    with ScriptedSource(stall_seconds=1.2) as s:
        yield s


def _plan(env, source, failure: str) -> None:
    """Small and large files failing once (the large one after its first part went up), and a small one failing always."""
    reqs = []
    for name, size, plan in (
        ("small-once", 3000, dict(failures=[failure])),
        ("large-once", 12 * MiB, dict(failures=[failure])),
        ("small-always", 2000, dict(forever=failure)),
    ):
        data = env.data(size)
        reqs.append(env.request(name, source.add(name, data, **plan), data, expect="ERROR" if name.endswith("always") else "SUCCESS"))
    env.submit(*reqs)


def _assert_failed_with_reason(env, source, reason: str) -> None:
    for name in ("small-always",):
        message = env.message(name)
        assert message.startswith(f"source {source.url}/{name}: ") and reason in message, message


@pytest.mark.parametrize("failure, reason", [("reset", "connection"), ("truncate", "truncated: got")])
def test_source_broken_mid_download(fault_env, source, reliability, failure, reason):
    _plan(fault_env, source, failure)
    _, verified, _, _ = fault_env.run_batch(fault_env.setup())
    assert verified.verified == 2 and len(verified.failed) == 1
    _assert_failed_with_reason(fault_env, source, reason)
    what = {"reset": "connection reset mid-download", "truncate": "truncated body under a full Content-Length"}[failure]
    reliability(
        f"source {what}",
        source.total_injected,
        fault_env.check(),
        side="source",
        outcome="once: retried and archived; always: ERROR after 3 attempts",
    )


@pytest.mark.alone  # a 0.4 s source timeout that only the stalled file may exceed
def test_source_slower_than_its_timeout(fault_env, source, reliability, monkeypatch):
    monkeypatch.setenv("GLACIER_SOURCE_TIMEOUT", "0.4")  # the source stalls 1.2 s
    _plan(fault_env, source, "stall")
    setup = fault_env.setup()
    assert setup.sources.read_timeout == 0.4
    _, verified, _, _ = fault_env.run_batch(setup)
    assert verified.verified == 2
    _assert_failed_with_reason(fault_env, source, "timed out")
    reliability(
        "source silent beyond GLACIER_SOURCE_TIMEOUT",
        source.total_injected,
        fault_env.check(),
        side="source",
        outcome="once: retried and archived; always: ERROR after 3 attempts",
    )


def test_source_with_another_checksum_than_announced(fault_env, source, reliability):
    reqs = []
    for name, size in (("small", 4000), ("large", 12 * MiB)):
        data = fault_env.data(size)
        reqs.append(fault_env.request(name, source.add(name, data), data, announce=data[:-1] + b"!", expect="ERROR"))
    good = fault_env.data(5000)
    reqs.append(fault_env.request("good", source.add("good", good), good))
    fault_env.submit(*reqs)
    _, verified, _, _ = fault_env.run_batch(fault_env.setup())
    for name in ("small", "large"):
        assert fault_env.message(name).startswith("checksum mismatch: MD5 of the source is"), fault_env.message(name)
    assert source.served["/large"] == 1  # a mismatch is not retried: the bytes were read whole
    reliability(
        "source bytes differ from the announced checksum",
        2,
        fault_env.check(),
        side="source",
        outcome="ERROR (checksum mismatch); the multipart upload aborted",
    )
