"""The broker side: RabbitMQ stopped in the middle of a batch (``rabbitmqctl stop_app``) and started again.

The real ``amqp_bridge_sensor`` ticks all along, as the Dagster daemon would. The batch is
verified while the broker is up, then the broker goes down, the batch is stored (its
responses wait in the catalog's outbox), the broker comes back, and the next ticks publish
them: every request answered exactly once on the response queue.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import uuid

import pytest

from glacier_pipelines_tests.conftest import require_services
from glacier_pipelines_tests.faults.conftest import MiB

pytestmark = [pytest.mark.faults, pytest.mark.amqp, pytest.mark.slow, pytest.mark.alone]  # stops the broker every amqp test uses
AMQP_URL = os.environ.get("GLACIER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


def _broker_up() -> bool:
    import pika

    try:
        pika.BlockingConnection(pika.URLParameters(AMQP_URL)).close()
        return True
    except Exception:
        return False


@pytest.fixture
def broker(fault_env, monkeypatch):
    if not _broker_up():
        if require_services() or os.environ.get("GLACIER_REQUIRE_BROKER") == "1":
            pytest.fail(f"RabbitMQ is required but unreachable at {AMQP_URL}")
        pytest.skip("RabbitMQ not reachable: broker restart test skipped")
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl not found: the broker cannot be restarted from here")
    suffix = uuid.uuid4().hex[:10]
    names = {
        "GLACIER_REQUEST_QUEUE": f"faults.{suffix}.requests",
        "GLACIER_RESPONSE_ROUTING_KEY": f"faults.{suffix}.responses",
        "GLACIER_DEAD_LETTER_QUEUE": f"faults.{suffix}.dlq",
    }
    for k, v in {**names, "GLACIER_REQUEST_TRANSPORT": "amqp", "GLACIER_AMQP_URL": AMQP_URL}.items():
        monkeypatch.setenv(k, v)
    yield names
    if not _broker_up():
        _rabbitmqctl("start_app")
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    for queue in names.values():
        channel.queue_delete(queue=queue)
    connection.close()


def test_broker_restarted_mid_batch(fault_env, broker, reliability):
    import dagster as dg

    from glacier_pipelines.core.transport import submission_to_message
    from glacier_pipelines.defs.intake.sensors import amqp_bridge_sensor
    from glacier_pipelines.definitions import build_defs
    from glacier_pipelines.flows import archive as flow
    from glacier_pipelines.resources import resources_from_env

    reqs = []
    for i, size in enumerate([1500, 2500, 3500, 4500, 5500, 6500, 6 * MiB, 7 * MiB]):
        data = fault_env.data(size)
        reqs.append(fault_env.request(f"r{i}", fault_env.file(f"r{i}", data), data))
    with fault_env.transport() as transport:
        for req in reqs:
            transport.publish_request(*submission_to_message(req))

    resources = build_defs(resources_from_env()).resources
    ticks, errors = {"all": 0, "while_down": 0}, []
    down = threading.Event()
    stop = threading.Event()

    def tick(instance) -> None:
        was_down = down.is_set()
        result = amqp_bridge_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert isinstance(result, dg.SensorResult)  # a tick survives the broker being away
        ticks["all"] += 1
        ticks["while_down"] += was_down or down.is_set()  # the tick met the broker going, gone or coming back

    with dg.instance_for_test() as instance:
        tick(instance)  # the requests go into the catalog
        assert fault_env.catalog().status_counts("lab") == {"PENDING": len(reqs)}

        def ticking() -> None:
            try:
                while not stop.is_set():
                    tick(instance)
                    stop.wait(0.2)
            except BaseException as exc:  # reported by the test, not lost with the thread
                errors.append(exc)

        ticker = threading.Thread(target=ticking, daemon=True)
        setup = fault_env.setup()
        batch, _ = flow.claim_batch(setup.catalog, "lab", "run-1", 500, lambda run: True)
        verified = flow.verify_batch(setup, batch, "lab", "run-1")
        assert verified.verified == len(reqs)
        ticker.start()
        try:
            down.set()
            _rabbitmqctl("stop_app")  # mid-batch: verified, not yet stored
            down_at = time.monotonic()
            assert not _broker_up()
            stored = flow.store_batch(setup, batch, "lab", "run-1")
            flow.check_batch(setup, batch)  # the blocking check answers the stored requests
            assert stored.stored == len(reqs)
            time.sleep(max(0.0, 0.8 - (time.monotonic() - down_at)))  # a few ticks meet the broker away
            assert len(fault_env.catalog().unpublished_responses()) == len(reqs)  # kept in the outbox meanwhile
        finally:
            _rabbitmqctl("start_app")
            down.clear()
        deadline = time.monotonic() + 30
        while fault_env.catalog().unpublished_responses() and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        ticker.join(timeout=30)
    assert errors == [] and not ticker.is_alive()
    assert fault_env.catalog().unpublished_responses() == []
    assert ticks["while_down"] >= 1, ticks

    with fault_env.transport() as transport:
        published = [
            (m.headers.get("regards.tenant"), json.loads(m.body)["requestId"], json.loads(m.body)["status"])
            for m in transport.read_responses(10_000)
        ]
    tally = fault_env.check(published=published)
    reliability(
        "broker stopped mid-batch (rabbitmqctl stop_app), started again",
        1,
        tally,
        side="broker",
        outcome=f"{len(published)} responses published after it returned; {ticks['while_down']} sensor tick(s) ran while it was away",
    )
