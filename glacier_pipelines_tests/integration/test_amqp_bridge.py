"""The AMQP bridge over a real RabbitMQ: requests in, one terminal response out per request, dead letters aside."""

from __future__ import annotations

import json
import os
import threading
import uuid

import dagster as dg
import pika
import pytest

from glacier_pipelines.core import transport as tp
from glacier_pipelines.core.amqp import AmqpSettings, AmqpTransport, redact_amqp_url
from glacier_pipelines_tests.conftest import require_services

AMQP_URL = os.environ.get("GLACIER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
pytestmark = [pytest.mark.amqp]


def _broker_required() -> bool:
    return require_services() or os.environ.get("GLACIER_REQUIRE_BROKER") == "1"


@pytest.fixture
def amqp(archive, monkeypatch):
    """Unique queue names for this test, the transport switched to AMQP, queues deleted after."""
    try:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    except pika.exceptions.AMQPError as exc:
        if _broker_required():
            pytest.fail(f"RabbitMQ is required (GLACIER_REQUIRE_BROKER=1) but unreachable at {redact_amqp_url(AMQP_URL)}: {exc!r}")
        pytest.skip(f"RabbitMQ NOT reachable at {redact_amqp_url(AMQP_URL)}: AMQP bridge tests skipped ({exc!r})")
    suffix = uuid.uuid4().hex[:10]
    names = {
        "GLACIER_REQUEST_QUEUE": f"test.{suffix}.requests",
        "GLACIER_RESPONSE_ROUTING_KEY": f"test.{suffix}.responses",
        "GLACIER_DEAD_LETTER_QUEUE": f"test.{suffix}.dlq",
    }
    for k, v in names.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("GLACIER_REQUEST_TRANSPORT", "amqp")
    monkeypatch.setenv("GLACIER_AMQP_URL", AMQP_URL)
    yield names
    channel = connection.channel()
    for queue in names.values():
        channel.queue_delete(queue=queue)
    connection.close()


def _settings(names, url=AMQP_URL) -> AmqpSettings:
    return AmqpSettings(
        url=url,
        request_queue=names["GLACIER_REQUEST_QUEUE"],
        response_routing_key=names["GLACIER_RESPONSE_ROUTING_KEY"],
        dead_letter_queue=names["GLACIER_DEAD_LETTER_QUEUE"],
    )


def _publish_raw(names, headers, body: bytes) -> None:
    with AmqpTransport(_settings(names)) as t:
        t.publish_request(headers, body)


def _publish(names, *requests) -> None:
    with AmqpTransport(_settings(names)) as t:
        for req in requests:
            t.publish_request(*tp.submission_to_message(req))


def _tick(archive, instance, cursor=None, **overrides):
    from glacier_pipelines.defs.intake.sensors import amqp_bridge_sensor

    resources = {**archive.defs().resources, **overrides}
    return amqp_bridge_sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources))


def _drain_queue(names, key):
    with AmqpTransport(_settings(names)) as t:
        return t.read_queue(names[key], 10_000)


def test_two_tenants_give_two_runs_and_exactly_one_response_per_request(archive, instance, amqp):
    reqs = [
        archive.request(
            tenant,
            archive.file(f"{tenant}-{i}", f"{tenant}{i}".encode()),
            f"{tenant}{i}".encode(),
            requestId=f"{tenant}-{i}",
            owner="alice",
            session="s1",
        )
        for tenant in ("lab", "museum")
        for i in range(3)
    ]
    _publish(amqp, *reqs)

    result = _tick(archive, instance)
    assert sorted(r.partition_key for r in result.run_requests) == ["lab", "museum"]
    assert json.loads(result.cursor)["received"] == 6
    for run in result.run_requests:
        assert archive.run(run.partition_key, instance).success
    _tick(archive, instance, cursor=result.cursor)  # publishes the outbox

    responses = _drain_queue(amqp, "GLACIER_RESPONSE_ROUTING_KEY")
    assert sorted(json.loads(m.body)["requestId"] for m in responses) == sorted(r["requestId"] for r in reqs)
    report = archive.report()
    for message in responses:
        body = json.loads(message.body)
        row = report[body["requestId"]]
        assert message.headers["regards.request.id"] == body["requestId"]
        assert message.headers["regards.tenant"] == row["tenant"]
        assert message.headers["regards.worker_id"].startswith("glacier-pipelines@")
        assert set(body) == {"requestId", "status", "messages", "content"} and body["status"] == "SUCCESS"
        assert body["content"]["storeFileMetadata"] == {
            "checksum": row["checksum"],
            "algorithm": "MD5",
            "storedFileUrl": row["storedFileUrl"],
            "fileSizeInBytes": row["fileSizeInBytes"],
        }
        assert set(body["content"]["fileProcessingMetadata"]) == {
            "smallFileManaged",
            "cachePath",
            "filename",
            "storeParentUrl",
            "storeParentPath",
        }
    _tick(archive, instance)
    assert _drain_queue(amqp, "GLACIER_RESPONSE_ROUTING_KEY") == []  # never twice


def test_invalid_messages_are_answered_and_dead_lettered(archive, instance, amqp, monkeypatch):
    monkeypatch.setenv("GLACIER_TENANTS", "lab")
    good = archive.request("lab", archive.file("g", b"g"), b"g", requestId="mismatch", checksum="0" * 32)
    _publish(amqp, good)
    _publish_raw(amqp, {tp.HEADER_TENANT: "lab", tp.HEADER_REQUEST_ID: "bad-json"}, b"{oops")
    _publish_raw(
        amqp, {tp.HEADER_REQUEST_ID: "no-tenant"}, json.dumps({"checksum": "0" * 32, "algorithm": "MD5", "url": "file:///x"}).encode()
    )
    _publish(amqp, archive.request("stranger", archive.file("s", b"s"), b"s", requestId="unknown-tenant"))

    result = _tick(archive, instance)
    assert [r.partition_key for r in result.run_requests] == ["lab"]
    assert archive.run("lab", instance).success
    _tick(archive, instance)

    statuses = {json.loads(m.body)["requestId"]: json.loads(m.body)["status"] for m in _drain_queue(amqp, "GLACIER_RESPONSE_ROUTING_KEY")}
    assert statuses == {
        "mismatch": "ERROR",
        "bad-json": "INVALID_CONTENT",
        "no-tenant": "INVALID_CONTENT",
        "unknown-tenant": "INVALID_CONTENT",
    }
    dead = {m.headers.get(tp.HEADER_REQUEST_ID): m for m in _drain_queue(amqp, "GLACIER_DEAD_LETTER_QUEUE")}
    assert set(dead) == {"bad-json", "no-tenant", "unknown-tenant"}
    assert dead["bad-json"].body == b"{oops"  # the original message, untouched
    assert "not valid JSON" in dead["bad-json"].headers["x-dead-letter-reason"]
    assert "tenant" in dead["no-tenant"].headers["x-dead-letter-reason"]
    assert "not one of the tenants" in dead["unknown-tenant"].headers["x-dead-letter-reason"]
    with AmqpTransport(_settings(amqp)) as t:
        assert t.receive(10) == []  # nothing left to redeliver forever


def test_connection_dropped_between_persist_and_ack_loses_and_duplicates_nothing(archive, instance, amqp, monkeypatch):
    from glacier_pipelines.catalog import Catalog
    from glacier_pipelines.flows import intake

    reqs = [archive.request("lab", archive.file(f"f{i}", b"%d" % i), b"%d" % i, requestId=f"r{i}") for i in range(5)]
    _publish(amqp, *reqs)
    transport = AmqpTransport(_settings(amqp))
    real = Catalog.record_requests
    seen = {"n": 0}

    def record_then_drop(self, items):
        outcomes = real(self, items)
        seen["n"] += len(items)
        if seen["n"] == 3:
            transport._channel.close()  # the broker link dies after the third request was persisted
        return outcomes

    monkeypatch.setattr(Catalog, "record_requests", record_then_drop)
    first = intake.drain_requests(transport, archive.catalog(), chunk=1)
    transport.close()
    assert first.transport_error and first.new == 3  # three persisted; the ack of the third failed
    monkeypatch.setattr(Catalog, "record_requests", real)

    with AmqpTransport(_settings(amqp)) as again:
        second = intake.drain_requests(again, archive.catalog())
    assert second.new == 2 and second.duplicates == 1  # the third was persisted but not acked: redelivered, recognised
    assert archive.catalog().status_counts("lab") == {"PENDING": 5}
    with AmqpTransport(_settings(amqp)) as t:
        assert t.receive(10) == []


def test_responses_wait_for_the_broker_and_go_out_on_the_next_tick(archive, instance, amqp):
    from glacier_pipelines.resources import RequestTransportResource

    live = archive.defs().resources["request_transport"]
    down = RequestTransportResource(**{**live.model_dump(), "amqp_url": "amqp://guest:guest@127.0.0.1:1/%2F"})
    _publish_raw(amqp, {tp.HEADER_TENANT: "lab", tp.HEADER_REQUEST_ID: "early"}, b"[]")
    _tick(archive, instance)  # persisted as INVALID_CONTENT and answered while the broker is up
    assert len(_drain_queue(amqp, "GLACIER_RESPONSE_ROUTING_KEY")) == 1

    from glacier_pipelines.core.requests import parse_submission

    data = b"answered later"
    request = archive.request("lab", archive.file("x", data), data, requestId="later")
    archive.catalog().record_request(parse_submission(request), fallback_id="x")
    assert archive.run("lab", instance).success

    result = _tick(archive, instance, request_transport=down)
    assert isinstance(result, dg.SensorResult)  # the tick survives an unreachable broker
    assert archive.catalog().unpublished_responses() and _drain_queue(amqp, "GLACIER_RESPONSE_ROUTING_KEY") == []

    _tick(archive, instance)
    out = _drain_queue(amqp, "GLACIER_RESPONSE_ROUTING_KEY")
    assert [json.loads(m.body)["requestId"] for m in out] == ["later"]
    assert archive.catalog().unpublished_responses() == []


def test_pre_declared_queues_with_other_arguments_are_accepted(archive, amqp):
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    channel.queue_declare(amqp["GLACIER_REQUEST_QUEUE"], durable=True, arguments={"x-max-length": 100000, "x-queue-type": "classic"})
    channel.queue_declare(amqp["GLACIER_DEAD_LETTER_QUEUE"], durable=True, arguments={"x-message-ttl": 86_400_000})
    connection.close()
    req = archive.request("lab", archive.file("q", b"q"), b"q", requestId="q")
    _publish(amqp, req)
    with AmqpTransport(_settings(amqp)) as t:
        [msg] = t.receive(10)
        assert msg.headers[tp.HEADER_REQUEST_ID] == "q"
        t.ack(msg.id)


def test_two_consumers_of_one_queue_never_take_a_request_twice(archive, instance, amqp):
    from glacier_pipelines.flows import archive as flow
    from glacier_pipelines.flows import intake

    n = 300
    _publish(amqp, *[archive.request("lab", "file:///nowhere", b"", requestId=f"c{i}") for i in range(n)])
    catalog = archive.catalog()
    results = []

    def consume():
        with AmqpTransport(_settings(amqp)) as t:
            results.append(intake.drain_requests(t, catalog, chunk=20))

    threads = [threading.Thread(target=consume) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(r.new for r in results) == n and sum(r.duplicates for r in results) == 0
    assert catalog.status_counts("lab") == {"PENDING": n}

    batches = []

    def claim(run_id):
        batches.append(flow.claim_batch(catalog, "lab", run_id, 200, lambda r: False))

    threads = [threading.Thread(target=claim, args=(f"run-{i}",)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    claimed = [set(r.request_id for r in catalog.batch_requests(b)) for b, _ in batches]
    assert not (claimed[0] & claimed[1]) and len(claimed[0] | claimed[1]) == n


def test_submit_publishes_with_regards_headers(archive, amqp, tmp_path):
    from glacier_pipelines import cli

    req = archive.request("lab", archive.file("s", b"s"), b"s", requestId="via-cli", owner="bob", session="night")
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(req) + "\n")
    sent, errors = cli.submit(str(path))
    assert (sent, errors) == (1, [])
    with AmqpTransport(_settings(amqp)) as t:
        [msg] = t.receive(1)
        t.ack(msg.id)
    assert msg.headers == {
        "regards.tenant": "lab",
        "regards.request.id": "via-cli",
        "regards.request.owner": "bob",
        "regards.request.session": "night",
        "regards.request.content_type": "s3-glacier-storage-worker",
    }
    assert json.loads(msg.body) == {k: v for k, v in req.items() if k not in ("tenant", "requestId", "owner", "session")}


def test_broker_password_never_appears_in_errors():
    bad = AmqpTransport(AmqpSettings(url="amqp://guest:s3cr3t-pw@127.0.0.1:1/%2F"))
    with pytest.raises(tp.TransportError) as info:
        bad.receive(1)
    assert "s3cr3t-pw" not in str(info.value) and "127.0.0.1:1" in str(info.value)


def test_restore_requests_over_amqp_are_recorded_and_bad_ones_dead_lettered(archive, instance, amqp, monkeypatch):
    queue = f"{amqp['GLACIER_REQUEST_QUEUE']}.restores"
    monkeypatch.setenv("GLACIER_RESTORE_REQUEST_QUEUE", queue)
    data = b"to be restored"
    archive.submit(archive.request("lab", archive.file("r", data), data, requestId="keep"))
    assert archive.run("lab", instance).success
    with AmqpTransport(_settings(amqp)) as t:
        t.publish_to(
            queue,
            {tp.HEADER_TENANT: "lab"},
            json.dumps({"files": [{"requestId": "keep"}], "days": 2, "tier": "Standard", "requester": "r@example.org"}).encode(),
        )
        t.publish_to(queue, {}, json.dumps({"tenant": "lab", "files": [], "days": 0, "requester": "x"}).encode())
    try:
        _tick(archive, instance)
        from glacier_pipelines.flows import restore as flow

        r = archive.defs().resources
        rows = flow.report_rows(r["restore"].setup(r["catalog"], r["archive_store"]), "lab")
        assert [(row["requestId"], row["status"], row["tier"], row["days"]) for row in rows] == [("keep", "PENDING", "Standard", 2)]
        dead = _drain_queue(amqp, "GLACIER_DEAD_LETTER_QUEUE")
        assert len(dead) == 1 and "days" in dead[0].headers["x-dead-letter-reason"]
        with AmqpTransport(_settings(amqp)) as t:
            assert t.receive_from(queue, 10) == []
    finally:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        connection.channel().queue_delete(queue=queue)
        connection.close()
