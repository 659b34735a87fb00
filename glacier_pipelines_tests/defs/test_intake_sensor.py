"""request_intake_sensor: persists before acknowledging, one run request per tenant, harmless repeats."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from glacier_pipelines_tests.conftest import responses_of


def _evaluate(archive, instance, cursor=None):
    from glacier_pipelines.defs.intake.sensors import request_intake_sensor

    defs = archive.defs()
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=defs.resources)
    return request_intake_sensor(context)


def _publish(archive, *requests):
    from glacier_pipelines.core.transport import submission_to_message

    transport = archive.transport()
    for req in requests:
        transport.publish_request(*submission_to_message(req))


def test_sensor_persists_requests_and_requests_one_run_per_tenant(archive, instance):
    reqs = [archive.request(t, archive.file(f"{t}{i}", b"%d" % i), b"%d" % i) for t in ("lab", "museum") for i in range(3)]
    _publish(archive, *reqs)

    result = _evaluate(archive, instance)

    assert sorted(r.partition_key for r in result.run_requests) == ["lab", "museum"]
    assert len({r.run_key for r in result.run_requests}) == 2
    [partition_request] = result.dynamic_partitions_requests
    assert sorted(partition_request.partition_keys) == ["lab", "museum"]
    assert json.loads(result.cursor) == {"received": 6, "published": 0}
    assert archive.transport().requests.count("new") == 0 and archive.transport().requests.count("cur") == 0
    assert archive.catalog().status_counts() == {"PENDING": 6}

    # A second tick with nothing new: the same run keys, so Dagster launches nothing twice.
    instance.add_dynamic_partitions("tenants", ["lab", "museum"])
    again = _evaluate(archive, instance, cursor=result.cursor)
    assert {r.run_key for r in again.run_requests} == {r.run_key for r in result.run_requests}
    assert again.dynamic_partitions_requests == []
    assert json.loads(again.cursor)["received"] == 6  # the cursor only moves forward


def test_sensor_records_invalid_content_dead_letters_it_and_publishes_the_response(archive, instance):
    from glacier_pipelines.core.transport import HEADER_REQUEST_ID, HEADER_TENANT

    transport = archive.transport()
    transport.publish_request({HEADER_TENANT: "lab", HEADER_REQUEST_ID: "broken-json"}, b"{not json")
    transport.publish_request(
        {HEADER_REQUEST_ID: "no-tenant"}, json.dumps({"checksum": "0" * 32, "algorithm": "MD5", "url": "file:///x"}).encode()
    )

    result = _evaluate(archive, instance)

    assert result.run_requests == []
    report = archive.report()
    assert report["broken-json"]["status"] == "INVALID_CONTENT"
    assert "not valid JSON" in report["broken-json"]["messages"][0]
    assert report["no-tenant"]["status"] == "INVALID_CONTENT"
    assert any(m.startswith("tenant") for m in report["no-tenant"]["messages"])
    assert transport.requests.count("dead") == 2
    assert json.loads(result.cursor)["published"] == 2  # INVALID_CONTENT answers go out on the same tick
    published = {json.loads(m.body)["requestId"]: json.loads(m.body)["status"] for m in transport.read_responses(10)}
    assert published == {"broken-json": "INVALID_CONTENT", "no-tenant": "INVALID_CONTENT"}


def test_tenant_allow_list(archive, instance, monkeypatch):
    monkeypatch.setenv("GLACIER_TENANTS", "lab")
    _publish(archive, archive.request("intruder", archive.file("x", b"x"), b"x", requestId="sneaky"))
    result = _evaluate(archive, instance)
    assert result.run_requests == []
    row = archive.report()["sneaky"]
    assert row["status"] == "INVALID_CONTENT" and "not one of the tenants" in row["messages"][0]


def test_redelivered_request_is_archived_once_and_answered_once(archive, instance):
    data = b"delivered twice"
    req = archive.request("lab", archive.file("d", data), data, requestId="dup")
    _publish(archive, req, req)
    _evaluate(archive, instance)
    assert archive.catalog().status_counts("lab") == {"PENDING": 1}
    assert archive.run("lab", instance).success
    _publish(archive, req)  # the worker manager resends after completion
    _evaluate(archive, instance)
    responses = responses_of(archive)
    assert list(responses) == ["dup"] and responses["dup"]["status"] == "SUCCESS"
    assert archive.catalog().status_counts("lab") == {"SUCCESS": 1}


def test_catalog_failure_during_intake_loses_no_message(archive, instance, monkeypatch):
    from glacier_pipelines.catalog import Catalog
    from glacier_pipelines.flows import intake

    reqs = [archive.request("lab", archive.file(f"f{i}", b"%d" % i), b"%d" % i, requestId=f"m{i}") for i in range(4)]
    _publish(archive, *reqs)
    real = Catalog.record_requests
    calls = {"n": 0}

    def flaky(self, items):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("database went away")
        return real(self, items)

    monkeypatch.setattr(Catalog, "record_requests", flaky)
    transport = archive.transport()
    with pytest.raises(RuntimeError):
        intake.drain_requests(transport, archive.catalog(), chunk=2)
    assert archive.catalog().status_counts("lab") == {"PENDING": 2}
    assert transport.requests.count("new") == 2 and transport.requests.count("cur") == 0  # given back, not lost
    monkeypatch.setattr(Catalog, "record_requests", real)
    intake.drain_requests(transport, archive.catalog())
    assert archive.catalog().status_counts("lab") == {"PENDING": 4}
