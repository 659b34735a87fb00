"""Deletion, restoration and availability requests over a real RabbitMQ: one terminal answer each, dead letters aside."""

from __future__ import annotations

import json
import os
import uuid

import pika
import pytest

from glacier_pipelines.core import transport as tp
from glacier_pipelines.core import worker_requests as wr
from glacier_pipelines.core.amqp import AmqpSettings, AmqpTransport, redact_amqp_url
from glacier_pipelines_tests.conftest import BUCKET, archived_keys, require_services, s3_client

AMQP_URL = os.environ.get("GLACIER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
pytestmark = [pytest.mark.amqp]


@pytest.fixture
def amqp(archive, monkeypatch):
    """Unique queues for this test, the transport switched to AMQP, queues deleted after."""
    try:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    except pika.exceptions.AMQPError as exc:
        if require_services() or os.environ.get("GLACIER_REQUIRE_BROKER") == "1":
            pytest.fail(f"RabbitMQ is required but unreachable at {redact_amqp_url(AMQP_URL)}: {exc!r}")
        pytest.skip(f"RabbitMQ NOT reachable at {redact_amqp_url(AMQP_URL)} ({exc!r})")
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


def _transport(names) -> AmqpTransport:
    return AmqpTransport(
        AmqpSettings(
            url=AMQP_URL,
            request_queue=names["GLACIER_REQUEST_QUEUE"],
            response_routing_key=names["GLACIER_RESPONSE_ROUTING_KEY"],
            dead_letter_queue=names["GLACIER_DEAD_LETTER_QUEUE"],
        )
    )


@pytest.fixture
def stored(archive, amqp):
    """lab: a, b (standalone, DEEP_ARCHIVE), twin-1 and twin-2 (one content, deduplicated); museum: m. Stored and answered."""
    files = {"a": b"alpha" * 100, "b": b"bravo" * 100, "twin": b"same bytes" * 50}
    reqs = [
        archive.request("lab", archive.file("a", files["a"]), files["a"], requestId="lab-a"),
        archive.request("lab", archive.file("b", files["b"]), files["b"], requestId="lab-b"),
        archive.request("lab", archive.file("twin1", files["twin"]), files["twin"], requestId="twin-1"),
        archive.request("lab", archive.file("twin2", files["twin"]), files["twin"], requestId="twin-2"),
        archive.request("museum", archive.file("m", b"museum piece"), b"museum piece", requestId="museum-m"),
    ]
    from glacier_pipelines.flows import archive as archive_flow
    from glacier_pipelines.flows import intake

    with _transport(amqp) as t:  # over the real queue (closed after: a lingering consumer would hold later messages)
        for req in reqs:
            t.publish_request(*tp.submission_to_message(req))
        assert intake.drain_requests(t, archive.catalog()).new == len(reqs)
    from glacier_pipelines.resources.archive import archive_setup

    r = archive.defs().resources
    setup = archive_setup(r["catalog"], r["archive_store"], r["sources"], r["request_transport"])
    for tenant in ("lab", "museum"):
        batch, _ = archive_flow.claim_batch(setup.catalog, tenant, f"setup-{tenant}", 100, lambda run: True)
        archive_flow.verify_batch(setup, batch, tenant, f"setup-{tenant}")
        archive_flow.store_batch(setup, batch, tenant, f"setup-{tenant}")
        archive_flow.check_waiting(setup, tenant)  # the blocking check: answers SUCCESS and writes the ledger
    report = archive.report()
    assert {row["status"] for row in report.values()} == {"SUCCESS"}
    assert report["twin-2"]["deduplicated"] and report["twin-2"]["storedFileUrl"] == report["twin-1"]["storedFileUrl"]
    with _transport(amqp) as t:  # the storage answers, out of the way
        intake.publish_responses(t, archive.catalog(), worker_id="test")
        t.read_queue(amqp["GLACIER_RESPONSE_ROUTING_KEY"], 10_000)
    return report


def _send(names, content_type, tenant, request_id, body) -> None:
    headers = {tp.HEADER_CONTENT_TYPE: content_type, tp.HEADER_REQUEST_ID: request_id}
    if tenant is not None:
        headers[tp.HEADER_TENANT] = tenant
    with _transport(names) as t:
        t.publish_request(headers, body if isinstance(body, bytes) else json.dumps(body).encode())


def _process(archive, names, *, now=None):
    """One pass as the sensors make it: intake from the queue, decisions, then the outbox published. Returns answers by id."""
    from glacier_pipelines.flows import availability, deletion, intake, restoration
    from glacier_pipelines.resources.archive import pricing_or_none

    r = archive.defs().resources
    catalog = archive.catalog()
    with _transport(names) as t:
        result = intake.drain_requests(t, catalog, allowed_tenants=("lab", "museum"))
        setup = deletion.DeletionSetup(
            catalog=catalog, s3=r["archive_store"].client(), bucket=BUCKET, key_prefix="archive", pricing=pricing_or_none("us-east-1")
        )
        deletion.process(setup, now=now)
        restore_setup = r["restore"].setup(r["catalog"], r["archive_store"])
        restoration.submit_pending(restore_setup)
        restoration.sync(restore_setup)
        availability.answer_pending(catalog)
        intake.publish_responses(t, catalog, worker_id="test-worker")
        answers: dict[str, list[dict]] = {}
        for m in t.read_queue(names["GLACIER_RESPONSE_ROUTING_KEY"], 10_000):
            body = json.loads(m.body)
            assert m.headers["regards.request.id"] == body["requestId"]
            answers.setdefault(body["requestId"], []).append(body)
    return result, answers


def _dead_letters(names) -> list:
    with _transport(names) as t:
        return t.read_queue(names["GLACIER_DEAD_LETTER_QUEUE"], 10_000)


def _ledger_lines(tenant="lab") -> list[dict]:
    from glacier_pipelines.core import ledger

    s3 = s3_client()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"archive/{tenant}/ledger/").get("Contents", [])]
    return [e for k in sorted(keys) for e in ledger.parse(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read())]


# -- deletion ---------------------------------------------------------------------------------------


def test_deletion_removes_the_bytes_with_the_early_deletion_charge_and_only_once(archive, amqp, catalog_backend, stored):
    key = stored["lab-a"]["storedFileUrl"].removeprefix(f"s3://{BUCKET}/")
    assert key in archived_keys()
    body = {"file": {"requestId": "lab-a"}, "reason": "withdrawn"}
    _send(amqp, wr.DELETION, "lab", "del-1", body)
    _send(amqp, wr.DELETION, "lab", "del-1", body)  # a duplicate: one effect, one answer
    result, answers = _process(archive, amqp)
    assert (result.received, result.new, result.duplicates, result.invalid) == (2, 1, 1, 0), result
    [answer] = answers["del-1"]
    assert answer["status"] == "SUCCESS", answer
    content = answer["content"]
    assert content["deletedRequests"] == ["lab-a"] and content["alreadyDeleted"] is False
    [file] = content["files"]
    assert (
        file["bytesDeleted"] is True
        and file["storageClass"] == "DEEP_ARCHIVE"
        and file["storedFileUrl"] == stored["lab-a"]["storedFileUrl"]
    )
    assert file["earlyDeletionChargeUsd"] > 0 and content["earlyDeletionChargeUsd"] == pytest.approx(file["earlyDeletionChargeUsd"])
    assert any("180-day minimum" in m for m in answer["messages"])
    assert key not in archived_keys()
    assert archive.report()["lab-a"]["status"] == "DELETED"
    assert [e["status"] for e in _ledger_lines() if e["requestId"] == "lab-a"] == ["SUCCESS", "DELETED"]

    _send(amqp, wr.DELETION, "lab", "del-2", {"file": {"checksum": stored["lab-a"]["checksum"]}})
    _send(amqp, wr.DELETION, "lab", "del-3", {"file": {"url": stored["lab-a"]["storedFileUrl"]}})
    _, answers = _process(archive, amqp)
    for request_id in ("del-2", "del-3"):
        [again] = answers[request_id]
        assert again["status"] == "SUCCESS" and again["content"]["alreadyDeleted"] is True
        assert again["messages"][0].endswith("already deleted")
    assert archive.report()["lab-b"]["status"] == "SUCCESS"  # nothing else touched
    assert _process(archive, amqp)[1] == {}  # never answered twice


def test_shared_content_stays_until_its_last_reference_is_deleted(archive, amqp, stored):
    key = stored["twin-1"]["storedFileUrl"].removeprefix(f"s3://{BUCKET}/")
    _send(amqp, wr.DELETION, "lab", "del-twin-1", {"file": {"requestId": "twin-1"}})
    _, answers = _process(archive, amqp)
    [first] = answers["del-twin-1"]
    assert first["status"] == "SUCCESS"
    assert first["content"]["files"][0]["bytesDeleted"] is False and first["content"]["files"][0]["stillReferencedBy"] == 1
    assert first["content"]["earlyDeletionChargeUsd"] == 0
    assert key in archived_keys()
    assert archive.report()["twin-2"]["status"] == "SUCCESS"

    _send(amqp, wr.DELETION, "lab", "del-twin-2", {"file": {"requestId": "twin-2"}})
    _, answers = _process(archive, amqp)
    [second] = answers["del-twin-2"]
    assert second["status"] == "SUCCESS" and second["content"]["files"][0]["bytesDeleted"] is True
    assert key not in archived_keys()
    assert archive.catalog().find_object("lab", "MD5", stored["twin-1"]["checksum"]) is None  # nothing deduplicates onto it


def test_unknown_and_other_tenants_files_get_the_same_refusal(archive, amqp, stored):
    museum_url = stored["museum-m"]["storedFileUrl"]
    _send(amqp, wr.DELETION, "lab", "del-unknown", {"file": {"requestId": "nope"}})
    _send(amqp, wr.DELETION, "lab", "del-stranger", {"file": {"requestId": "museum-m"}})
    _send(amqp, wr.DELETION, "lab", "del-stranger-url", {"file": {"url": museum_url}})
    _send(amqp, wr.DELETION, "lab", "del-unknown-url", {"file": {"url": museum_url.replace("museum", "nobody")}})
    _, answers = _process(archive, amqp)
    refusals = {rid: answers[rid][0] for rid in ("del-unknown", "del-stranger", "del-stranger-url", "del-unknown-url")}
    assert {a["status"] for a in refusals.values()} == {"ERROR"}
    assert refusals["del-unknown"]["messages"] == ["requestId nope: no archived file of tenant lab has that name"]
    assert refusals["del-stranger"]["messages"] == ["requestId museum-m: no archived file of tenant lab has that name"]
    assert refusals["del-stranger-url"]["messages"][0].split(": ", 1)[1] == refusals["del-unknown-url"]["messages"][0].split(": ", 1)[1]
    assert museum_url.removeprefix(f"s3://{BUCKET}/") in archived_keys()
    assert archive.report()["museum-m"]["status"] == "SUCCESS"


@pytest.mark.parametrize("content_type", [wr.DELETION, wr.RESTORATION, wr.AVAILABILITY])
def test_malformed_bodies_are_answered_and_dead_lettered(archive, amqp, stored, content_type):
    _send(amqp, content_type, "lab", "bad-json", b"{oops")
    _send(amqp, content_type, "lab", "bad-field", {"file": {"requestId": "lab-a"}, "files": [], "typo": 1})
    valid = {"file": {"requestId": "lab-a"}} if content_type == wr.DELETION else {"files": [{"requestId": "lab-a"}]}
    _send(amqp, content_type, None, "no-tenant", valid)
    _send(amqp, content_type, "stranger", "bad-tenant", valid)
    result, answers = _process(archive, amqp)
    assert result.invalid == 4
    dead = {m.headers[tp.HEADER_REQUEST_ID]: m.headers["x-dead-letter-reason"] for m in _dead_letters(amqp)}
    assert set(dead) == {"bad-json", "bad-field", "no-tenant", "bad-tenant"}
    assert "body: is not valid JSON" in dead["bad-json"]
    assert "typo: unknown field" in dead["bad-field"]
    assert "tenant: is required" in dead["no-tenant"]
    assert "'stranger' is not one of the tenants" in dead["bad-tenant"]
    for request_id in ("bad-json", "bad-field", "bad-tenant"):
        [answer] = answers[request_id]
        assert answer["status"] == "INVALID_CONTENT" and answer["content"] == {}
    assert archive.report()["lab-a"]["status"] == "SUCCESS"  # nothing was deleted or restored
    assert s3_client().list_objects_v2(Bucket=BUCKET, Prefix="archive/lab/restored/").get("KeyCount", 0) == 0


def test_a_worker_request_reusing_a_storage_request_id_is_dead_lettered(archive, amqp, stored):
    _send(amqp, wr.DELETION, "lab", "lab-b", {"file": {"requestId": "lab-a"}})
    result, answers = _process(archive, amqp)
    assert result.invalid == 1 and answers == {}
    [dead] = _dead_letters(amqp)
    assert "already the id of a storage request" in dead.headers["x-dead-letter-reason"]
    assert archive.report()["lab-a"]["status"] == "SUCCESS"


def test_a_rebuilt_catalog_keeps_deleted_requests_deleted(archive, amqp, stored, tmp_path):
    from glacier_pipelines.catalog import Catalog
    from glacier_pipelines.flows import rebuild

    _send(amqp, wr.DELETION, "lab", "del-a", {"file": {"requestId": "lab-a"}})
    _send(amqp, wr.DELETION, "lab", "del-twin", {"file": {"requestId": "twin-1"}})  # bytes kept: twin-2 refers to them
    _, answers = _process(archive, amqp)
    assert answers["del-a"][0]["status"] == answers["del-twin"][0]["status"] == "SUCCESS"
    fresh = Catalog(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    rebuild.rebuild(fresh, s3_client(), BUCKET, "archive/")
    rebuilt = {r["requestId"]: r for r in fresh.report()}
    assert "lab-a" not in rebuilt and "twin-1" not in rebuilt  # their ledger lines end DELETED: never recreated as answered
    assert rebuilt["twin-2"]["status"] == rebuilt["lab-b"]["status"] == "SUCCESS"


# -- restoration and availability ------------------------------------------------------------------


def _restore_pass(archive):
    """What restore_job does for lab: start the restores, then deliver verified links (moto restores at once)."""
    from glacier_pipelines.flows import restore as flow

    r = archive.defs().resources
    setup = r["restore"].setup(r["catalog"], r["archive_store"])
    flow.start(setup, "lab", "run-start")
    return setup


def test_restoration_answers_delayed_then_success_with_links_and_availability_follows(archive, amqp, catalog_backend, stored):
    from glacier_pipelines.flows import restore as flow

    _send(amqp, wr.AVAILABILITY, "lab", "avail-before", {"files": [{"requestId": "lab-b"}]})
    body = {"files": [{"requestId": "lab-b"}, {"checksum": stored["twin-1"]["checksum"]}], "tier": "standard", "days": 2}
    _send(amqp, wr.RESTORATION, "lab", "rest-1", body)
    _send(amqp, wr.RESTORATION, "lab", "rest-1", body)  # duplicate: one restore
    result, answers = _process(archive, amqp)
    assert (result.new, result.duplicates) == (2, 1)
    [before] = answers["avail-before"]
    assert before["status"] == "SUCCESS"
    assert before["content"]["files"] == [
        {
            "file": "requestId lab-b",
            "available": False,
            "expiresAt": None,
            "storedFileUrl": stored["lab-b"]["storedFileUrl"],
            "restoreInProgress": False,
            "storageClass": "DEEP_ARCHIVE",
            "messages": ["not restored: send a restoration request"],
        }
    ]
    assert "rest-1" not in answers  # recorded, not started yet
    restores = archive.catalog()
    from glacier_pipelines.catalog.restores import RestoreStore

    rows = RestoreStore(restores).rows(tenant="lab")
    assert len(rows) == 2 and {r["tier"] for r in rows} == {"Standard"} and {r["days"] for r in rows} == {2}

    setup = _restore_pass(archive)
    _, answers = _process(archive, amqp)
    [delayed] = answers["rest-1"]
    assert delayed["status"] == "DELAYED" and {f["status"] for f in delayed["content"]["files"]} == {"IN_PROGRESS"}

    flow.deliver(setup, "lab", "run-deliver")
    _send(amqp, wr.AVAILABILITY, "lab", "avail-after", {"files": [{"requestId": "lab-b"}, {"requestId": "museum-m"}]})
    _, answers = _process(archive, amqp)
    [done] = answers["rest-1"]
    assert done["status"] == "SUCCESS", done
    files = {f["file"]: f for f in done["content"]["files"]}
    assert set(files) == {"requestId lab-b", f"checksum {stored['twin-1']['checksum']}"}
    for f in files.values():
        assert f["status"] == "READY" and f["downloadUrl"].startswith("https://") and f["expiresAt"]
    [after] = answers["avail-after"]
    lab_b, museum = after["content"]["files"]
    assert lab_b["available"] is True and lab_b["expiresAt"]
    assert museum == {
        "file": "requestId museum-m",
        "available": False,
        "expiresAt": None,
        "storedFileUrl": None,
        "restoreInProgress": False,
        "messages": ["requestId museum-m: no archived file of tenant lab has that name"],
    }
    assert _process(archive, amqp)[1] == {}  # each answered once


def test_restoration_of_unknown_or_other_tenants_files_is_refused_alike(archive, amqp, stored):
    _send(amqp, wr.RESTORATION, "lab", "rest-stranger", {"files": [{"requestId": "museum-m"}]})
    _send(amqp, wr.RESTORATION, "lab", "rest-unknown", {"files": [{"requestId": "nobody"}]})
    _send(amqp, wr.RESTORATION, "lab", "rest-too-long", {"files": [{"requestId": "lab-a"}], "days": 100_000})
    _, answers = _process(archive, amqp)
    [stranger], [unknown], [too_long] = answers["rest-stranger"], answers["rest-unknown"], answers["rest-too-long"]
    assert stranger["status"] == unknown["status"] == too_long["status"] == "ERROR"
    assert stranger["messages"] == ["requestId museum-m: REFUSED: requestId museum-m: no archived file of tenant lab has that name"]
    assert unknown["messages"] == ["requestId nobody: REFUSED: requestId nobody: no archived file of tenant lab has that name"]
    assert too_long["messages"] == ["days: at most 365, got 100000"]
    from glacier_pipelines.catalog.restores import RestoreStore

    assert {r["status"] for r in RestoreStore(archive.catalog()).rows()} == {"REFUSED"}  # nothing to restore for lab


def test_a_deleted_file_can_no_longer_be_restored_or_found_available(archive, amqp, stored):
    _send(amqp, wr.DELETION, "lab", "del-a", {"file": {"requestId": "lab-a"}})
    _process(archive, amqp)
    _send(amqp, wr.RESTORATION, "lab", "rest-a", {"files": [{"url": stored["lab-a"]["storedFileUrl"]}]})
    _send(amqp, wr.AVAILABILITY, "lab", "avail-a", {"files": [{"checksum": stored["lab-a"]["checksum"]}]})
    _, answers = _process(archive, amqp)
    assert answers["rest-a"][0]["status"] == "ERROR" and "no archived file of tenant lab" in answers["rest-a"][0]["messages"][0]
    assert answers["avail-a"][0]["content"]["files"][0]["available"] is False
    assert answers["avail-a"][0]["content"]["files"][0]["storedFileUrl"] is None


# -- package members ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_package_members_are_marked_deleted_and_the_package_goes_with_its_last_live_member(archive, amqp, instance, monkeypatch, tmp_path):
    import hashlib

    from glacier_pipelines.catalog import Catalog
    from glacier_pipelines.flows import intake, rebuild

    monkeypatch.setenv("GLACIER_STORAGE_CLASS", "STANDARD")
    monkeypatch.setenv("GLACIER_PACKAGE_THRESHOLD_BYTES", "1000")
    monkeypatch.setenv("GLACIER_PACKAGE_TARGET_BYTES", "3000")
    reqs = []
    for i in range(4):
        data = hashlib.sha256(f"m{i}".encode()).digest() * 28 + bytes([i]) * i
        reqs.append(archive.request("lab", archive.file(f"m{i}", data), data, requestId=f"m{i}", activateSmallFilePackaging=True))
    with _transport(amqp) as t:
        for req in reqs:
            t.publish_request(*tp.submission_to_message(req))
        assert intake.drain_requests(t, archive.catalog()).new == 4
    assert archive.run("lab", instance).success  # the package closes by size, is stored and checked
    report = archive.report()
    assert {report[f"m{i}"]["status"] for i in range(4)} == {"SUCCESS"}
    package_key = report["m0"]["storedFileUrl"].removeprefix(f"s3://{BUCKET}/").split("?")[0]
    assert package_key in archived_keys() and f"{package_key}.manifest.jsonl" in archived_keys()

    for i in range(3):
        _send(amqp, wr.DELETION, "lab", f"del-m{i}", {"file": {"requestId": f"m{i}"}})
    _, answers = _process(archive, amqp)
    for i in range(3):
        [answer] = answers[f"del-m{i}"]
        assert answer["status"] == "SUCCESS" and answer["content"]["files"][0]["bytesDeleted"] is False, answer
        assert answer["content"]["files"][0]["storedFileUrl"] == report[f"m{i}"]["storedFileUrl"]  # the member's own URL
        assert answer["content"]["files"][0]["packageUrl"] == f"s3://{BUCKET}/{package_key}"
    shares = [answers[f"del-m{i}"][0]["content"]["files"][0]["packageDeletedShare"] for i in range(3)]
    assert shares[0] == pytest.approx(896 / 3590, abs=1e-3) and shares[1] < 0.5 <= shares[2]  # m0..m3: 896..899 bytes
    due = [[m for m in answers[f"del-m{i}"][0]["messages"] if "due for repacking" in m] for i in range(3)]
    assert due[0] == due[1] == [] and len(due[2]) == 1 and "75% of its member bytes are deleted (threshold 50%)" in due[2][0]
    assert package_key in archived_keys()  # m3 still lives in it
    assert {archive.report()[f"m{i}"]["status"] for i in range(3)} == {"DELETED"}

    fresh = Catalog(f"sqlite:///{tmp_path / 'rebuilt.db'}")  # the manifest names m0..m3; the ledger says three are deleted
    rebuild.rebuild(fresh, s3_client(), BUCKET, "archive/")
    rebuilt = {r["requestId"]: r["status"] for r in fresh.report()}
    assert rebuilt == {"m0": "DELETED", "m1": "DELETED", "m2": "DELETED", "m3": "SUCCESS"}

    _send(amqp, wr.DELETION, "lab", "del-m3", {"file": {"url": report["m3"]["storedFileUrl"]}})
    _, answers = _process(archive, amqp)
    [last] = answers["del-m3"]
    assert last["status"] == "SUCCESS" and last["content"]["files"][0]["bytesDeleted"] is True
    assert last["content"]["earlyDeletionChargeUsd"] == 0  # STANDARD has no minimum duration
    assert package_key not in archived_keys() and f"{package_key}.manifest.jsonl" not in archived_keys()
    assert archive.report()["m3"]["status"] == "DELETED"


def test_a_storage_request_reusing_a_worker_request_id_is_dead_lettered(archive, amqp, stored):
    _send(amqp, wr.AVAILABILITY, "lab", "shared-id", {"files": [{"requestId": "lab-a"}]})
    _process(archive, amqp)
    data = b"late storage request"
    with _transport(amqp) as t:
        t.publish_request(*tp.submission_to_message(archive.request("lab", archive.file("late", data), data, requestId="shared-id")))
        t.publish_request(*tp.submission_to_message(archive.request("museum", archive.file("late", data), data, requestId="shared-id")))
    result, answers = _process(archive, amqp)
    assert (result.received, result.invalid, result.new) == (2, 1, 1) and answers == {}
    [dead] = _dead_letters(amqp)
    assert (
        dead.headers[tp.HEADER_TENANT] == "lab"
        and "already the id of this tenant's availability request" in dead.headers["x-dead-letter-reason"]
    )
    assert "shared-id" not in archive.report("lab") and archive.report("museum")["shared-id"]["status"] == "PENDING"
