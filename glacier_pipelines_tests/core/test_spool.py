"""Tests for glacier_pipelines.core.spool (the folder queue) and the embedded transport built on it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glacier_pipelines.core.requests import parse_request
from glacier_pipelines.core.spool import Message, SpoolQueue
from glacier_pipelines.core.transport import (
    DEFAULT_CONTENT_TYPE,
    HEADER_CONTENT_TYPE,
    HEADER_OWNER,
    HEADER_REQUEST_ID,
    HEADER_SESSION,
    HEADER_TENANT,
    EmbeddedTransport,
    envelope_from_headers,
    submission_to_message,
)


@pytest.fixture
def queue(tmp_path: Path) -> SpoolQueue:
    return SpoolQueue(tmp_path / "q")


def publish_n(q: SpoolQueue, n: int) -> list[str]:
    ids = []
    for i in range(n):
        ids.append(q.publish({"n": i}, f"body-{i}".encode()))
    return ids


# -- SpoolQueue ----------------------------------------------------------------------------------


def test_creates_folders(tmp_path: Path):
    SpoolQueue(tmp_path / "deep" / "q")
    assert sorted(p.name for p in (tmp_path / "deep" / "q").iterdir()) == ["cur", "dead", "new", "tmp"]


def test_publish_then_receive_round_trips(queue: SpoolQueue):
    msg_id = queue.publish({"a": "b", "n": 1, "nested": {"x": [1, 2]}}, b'{"k": "v"}')
    assert queue.count() == 1 and queue.count("tmp") == 0
    [msg] = queue.receive(10)
    assert isinstance(msg, Message)
    assert msg.id == msg_id
    assert msg.headers == {"a": "b", "n": 1, "nested": {"x": [1, 2]}}
    assert msg.body == b'{"k": "v"}'
    assert queue.count("new") == 0 and queue.count("cur") == 1


def test_receive_oldest_first_and_respects_max(queue: SpoolQueue):
    ids = publish_n(queue, 7)
    assert ids == sorted(ids)
    first = queue.receive(3)
    assert [m.id for m in first] == ids[:3]
    assert [m.body for m in first] == [b"body-0", b"body-1", b"body-2"]
    rest = queue.receive(100)
    assert [m.id for m in rest] == ids[3:]
    assert queue.receive(100) == []


def test_receive_zero(queue: SpoolQueue):
    publish_n(queue, 2)
    assert queue.receive(0) == []
    assert queue.count() == 2


def test_ack_removes(queue: SpoolQueue):
    publish_n(queue, 2)
    msgs = queue.receive(2)
    queue.ack(msgs[0].id)
    assert queue.count("cur") == 1
    queue.ack(msgs[1].id)
    assert queue.count("cur") == 0 and queue.count("new") == 0
    queue.ack(msgs[1].id)  # acking twice is harmless
    assert queue.receive(10) == []


def test_second_consumer_never_receives_a_claimed_message(queue: SpoolQueue):
    other = SpoolQueue(queue.root)
    ids = publish_n(queue, 4)
    mine = queue.receive(2)
    theirs = other.receive(10)
    assert [m.id for m in mine] == ids[:2]
    assert [m.id for m in theirs] == ids[2:]
    assert queue.receive(10) == [] and other.receive(10) == []


def test_interleaved_consumers_partition_messages(queue: SpoolQueue):
    consumers = [queue, SpoolQueue(queue.root), SpoolQueue(queue.root)]
    ids = publish_n(queue, 20)
    seen: list[str] = []
    while True:
        got = [m.id for c in consumers for m in c.receive(3)]
        if not got:
            break
        seen.extend(got)
    assert sorted(seen) == ids
    assert len(seen) == len(set(seen))


def test_release_returns_message(queue: SpoolQueue):
    [msg_id] = publish_n(queue, 1)
    [msg] = queue.receive(1)
    other = SpoolQueue(queue.root)
    assert other.receive(1) == []
    queue.release(msg.id)
    assert queue.count("cur") == 0 and queue.count("new") == 1
    [again] = other.receive(1)
    assert again.id == msg_id and again.body == msg.body and again.headers == msg.headers
    queue.release("no-such-message.json")  # harmless


def test_visibility_timeout_requeues_unacked(tmp_path: Path):
    q = SpoolQueue(tmp_path / "q", visibility_timeout=1.0)  # wide enough for a loaded machine
    [msg_id] = publish_n(q, 1)
    [msg] = q.receive(1)
    assert q.receive(1) == []  # still invisible
    time.sleep(1.2)
    [again] = SpoolQueue(q.root, visibility_timeout=1.0).receive(1)
    assert again.id == msg_id and again.body == msg.body


def test_visibility_timeout_counts_from_the_claim_not_the_publish(tmp_path: Path):
    q = SpoolQueue(tmp_path / "q", visibility_timeout=60)
    [msg_id] = publish_n(q, 1)
    old = time.time() - 3600
    os.utime(q.root / "new" / msg_id, (old, old))  # published an hour ago
    [msg] = q.receive(1)
    assert msg.id == msg_id
    # Just claimed: not requeued even though the file was written long ago.
    assert q.receive(1) == []
    assert q.count("cur") == 1
    # Once the claim is older than the timeout, it comes back.
    os.utime(q.root / "cur" / msg_id, (old, old))
    [again] = q.receive(1)
    assert again.id == msg_id


def test_acked_message_not_requeued(tmp_path: Path):
    q = SpoolQueue(tmp_path / "q", visibility_timeout=0.0)
    publish_n(q, 1)
    [msg] = q.receive(1)
    q.ack(msg.id)
    assert q.receive(1) == []


def test_dead_letter_keeps_body_and_reason_never_redelivered(tmp_path: Path):
    q = SpoolQueue(tmp_path / "q", visibility_timeout=0.0)
    msg_id = q.publish({"regards.tenant": "acme"}, b"\x00\xffpoison")
    [msg] = q.receive(1)
    q.dead_letter(msg.id, "INVALID_CONTENT: bad checksum")
    assert q.count("cur") == 0 and q.count("new") == 0 and q.count("dead") == 1
    record = json.loads((q.root / "dead" / msg_id).read_bytes())
    assert record["headers"]["regards.tenant"] == "acme"
    assert record["headers"]["x-dead-letter-reason"] == "INVALID_CONTENT: bad checksum"
    # The dead file is a spool record: decode it with a queue pointed at dead/ as new/.
    os.replace(q.root / "dead" / msg_id, q.root / "new" / msg_id)
    [back] = q.receive(1)
    assert back.body == b"\x00\xffpoison"
    assert back.headers["x-dead-letter-reason"] == "INVALID_CONTENT: bad checksum"


def test_dead_lettered_message_not_redelivered_after_timeout(tmp_path: Path):
    q = SpoolQueue(tmp_path / "q", visibility_timeout=0.0)
    publish_n(q, 2)
    first, second = q.receive(2)
    q.dead_letter(first.id, "nope")
    q.release(second.id)
    time.sleep(0.01)
    got = q.receive(10)
    assert [m.id for m in got] == [second.id]
    assert q.count("dead") == 1


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=512), st.dictionaries(st.text(max_size=10), st.text(max_size=10) | st.integers(), max_size=4))
def test_any_body_round_trips_exactly(tmp_path_factory, body, headers):
    q = SpoolQueue(tmp_path_factory.mktemp("q"))
    q.publish(headers, body)
    [msg] = q.receive(1)
    assert msg.body == body
    assert msg.headers == headers


def test_non_utf8_body_round_trips(queue: SpoolQueue):
    body = bytes(range(256))
    queue.publish({}, body)
    raw = next((queue.root / "new").iterdir()).read_bytes()
    assert "body_base64" in json.loads(raw)
    [msg] = queue.receive(1)
    assert msg.body == body


def test_utf8_body_stored_as_text(queue: SpoolQueue):
    queue.publish({}, "données ✓".encode())
    raw = json.loads(next((queue.root / "new").iterdir()).read_bytes())
    assert raw["body"] == "données ✓"
    assert queue.receive(1)[0].body == "données ✓".encode()


def _drop_spool_file(q: SpoolQueue, name: str, content: bytes) -> None:
    (q.root / "new" / name).write_bytes(content)


@pytest.mark.parametrize(
    "content", [b"\xff\xfe not json", b"{truncated", b"", b'{"body_base64": "@@@not base64"}', b"5", b'{"headers": "ab", "body": ""}']
)
def test_unreadable_spool_file_goes_to_dead(queue: SpoolQueue, content: bytes):
    ids = publish_n(queue, 1)
    _drop_spool_file(queue, "00000000000000000000-broken.json", content)  # sorts first
    msgs = queue.receive(10)
    assert [m.id for m in msgs] == ids
    assert queue.count("dead") == 1
    dead = json.loads((queue.root / "dead" / "00000000000000000000-broken.json").read_bytes())
    assert dead["headers"]["x-dead-letter-reason"].startswith("unreadable spool file")
    assert queue.count("cur") == 1  # only the good one


@pytest.mark.parametrize("content", [b"[]", b'"x"', b'{"body": null}', b'{"body": 5}'])
def test_json_but_malformed_spool_file_goes_to_dead(queue: SpoolQueue, content: bytes):
    ids = publish_n(queue, 1)
    _drop_spool_file(queue, "00000000000000000000-broken.json", content)
    msgs = queue.receive(10)
    assert [m.id for m in msgs] == ids
    assert queue.count("dead") == 1


def test_count(queue: SpoolQueue):
    assert queue.count() == 0
    publish_n(queue, 3)
    assert queue.count() == 3 and queue.count("new") == 3
    [m] = queue.receive(1)
    assert (queue.count("new"), queue.count("cur"), queue.count("dead")) == (2, 1, 0)
    queue.dead_letter(m.id, "x")
    assert (queue.count("new"), queue.count("cur"), queue.count("dead")) == (2, 0, 1)


# -- transport -----------------------------------------------------------------------------------

SUBMISSION = {
    "tenant": "acme",
    "requestId": "req-1",
    "owner": "alice",
    "session": "sess",
    "checksum": "0" * 32,
    "algorithm": "MD5",
    "url": "file:///data/x",
    "destinationDirectory": "d",
}


def test_submission_to_message_headers_and_body():
    headers, body = submission_to_message(SUBMISSION)
    assert headers == {
        HEADER_TENANT: "acme",
        HEADER_REQUEST_ID: "req-1",
        HEADER_OWNER: "alice",
        HEADER_SESSION: "sess",
        HEADER_CONTENT_TYPE: DEFAULT_CONTENT_TYPE,
    }
    assert (HEADER_TENANT, HEADER_REQUEST_ID, HEADER_OWNER, HEADER_SESSION) == (
        "regards.tenant",
        "regards.request.id",
        "regards.request.owner",
        "regards.request.session",
    )
    assert HEADER_CONTENT_TYPE == "regards.request.content_type"
    assert isinstance(body, bytes)
    decoded = json.loads(body)
    assert decoded == {k: v for k, v in SUBMISSION.items() if k not in ("tenant", "requestId", "owner", "session")}


def test_submission_to_message_omits_missing_envelope_fields():
    headers, body = submission_to_message({"tenant": "acme", "owner": None, "checksum": "c"})
    assert headers == {HEADER_TENANT: "acme", HEADER_CONTENT_TYPE: DEFAULT_CONTENT_TYPE}
    assert json.loads(body) == {"checksum": "c"}


def test_envelope_round_trip():
    headers, body = submission_to_message(SUBMISSION)
    env = envelope_from_headers(headers)
    assert env == {"tenant": "acme", "requestId": "req-1", "owner": "alice", "session": "sess"}
    parsed = parse_request(body, env)
    assert parsed.valid, parsed.errors
    assert parsed.envelope.tenant == "acme" and parsed.request.url == "file:///data/x"


def test_envelope_from_headers_missing_values_are_none():
    assert envelope_from_headers({HEADER_TENANT: "t", "other": 1}) == {"tenant": "t", "requestId": None, "owner": None, "session": None}


def test_embedded_transport_through_spool(tmp_path: Path):
    transport = EmbeddedTransport(tmp_path)
    headers, body = submission_to_message(SUBMISSION)
    transport.publish_request(headers, body)
    transport.publish_request({**headers, HEADER_REQUEST_ID: "req-2"}, body)
    [m1] = transport.receive(1)
    assert m1.headers[HEADER_REQUEST_ID] == "req-1" and m1.body == body
    transport.release(m1.id)
    m1b, m2 = transport.receive(5)
    assert m1b.id == m1.id and m2.headers[HEADER_REQUEST_ID] == "req-2"
    transport.ack(m1b.id)
    transport.dead_letter(m2.id, "bad")
    assert transport.receive(5) == []
    assert transport.requests.count("dead") == 1 and transport.requests.count("cur") == 0
    assert transport.responses.count() == 0  # requests and responses are separate folders


def test_embedded_transport_read_responses_consumes(tmp_path: Path):
    transport = EmbeddedTransport(tmp_path)
    for i in range(3):
        transport.publish_response({"regards.request.id": f"r{i}"}, json.dumps({"requestId": f"r{i}"}).encode())
    first = transport.read_responses(2)
    assert [json.loads(m.body)["requestId"] for m in first] == ["r0", "r1"]
    assert transport.responses.count("cur") == 0  # acked, not just claimed
    rest = transport.read_responses(10)
    assert [m.headers["regards.request.id"] for m in rest] == ["r2"]
    assert transport.read_responses(10) == []
    # A fresh transport on the same root sees nothing either.
    assert EmbeddedTransport(tmp_path).read_responses(10) == []
    assert transport.receive(10) == []  # responses never appear as requests
