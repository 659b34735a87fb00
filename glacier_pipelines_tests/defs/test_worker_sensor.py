"""worker_requests_sensor: deletion, restoration and availability requests from the embedded spool, decided in one tick."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from glacier_pipelines.core import transport as tp
from glacier_pipelines.core import worker_requests as wr
from glacier_pipelines.flows import intake
from glacier_pipelines_tests.conftest import archived_keys, responses_of


def _put(archive, content_type, request_id, body):
    archive.transport().publish_request(
        {tp.HEADER_CONTENT_TYPE: content_type, tp.HEADER_TENANT: "lab", tp.HEADER_REQUEST_ID: request_id}, json.dumps(body).encode()
    )


def test_the_sensor_answers_each_type_once(archive, instance):
    data = b"kept for a while" * 64
    archive.submit(archive.request("lab", archive.file("k", data), data, requestId="keep"))
    assert archive.run("lab", instance).success
    assert archive.report()["keep"]["status"] == "SUCCESS"
    responses_of(archive)  # the storage answer, out of the way
    _put(archive, wr.DELETION, "del-unknown", {"file": {"requestId": "nope"}})
    _put(archive, wr.AVAILABILITY, "avail", {"files": [{"requestId": "keep"}]})
    _put(archive, wr.RESTORATION, "rest", {"files": [{"requestId": "keep"}], "days": 1})
    _put(archive, wr.DELETION, "del-keep", {"file": {"requestId": "keep"}})
    result = intake.drain_requests(archive.transport(), archive.catalog())
    assert (result.new, result.invalid) == (4, 0)

    from glacier_pipelines.defs.intake.worker_sensors import worker_requests_sensor

    outcome = worker_requests_sensor(dg.build_sensor_context(instance=instance, resources=archive.defs().resources))
    assert isinstance(outcome, dg.SkipReason) and "1 object(s) removed" in outcome.skip_message
    answers = responses_of(archive)
    assert answers["del-unknown"]["status"] == "ERROR"
    assert answers["del-unknown"]["messages"] == ["requestId nope: no archived file of tenant lab has that name"]
    assert answers["avail"]["status"] == "SUCCESS" and answers["avail"]["content"]["files"][0]["available"] is False
    assert answers["del-keep"]["status"] == "SUCCESS" and answers["del-keep"]["content"]["files"][0]["bytesDeleted"] is True
    # deletions are decided first in a tick: the restoration then finds no such file, in the words used for unknown ones
    assert answers["rest"]["status"] == "ERROR"
    assert answers["rest"]["messages"] == ["requestId keep: REFUSED: requestId keep: no archived file of tenant lab has that name"]
    assert [k for k in archived_keys() if "/dir/" in k] == []
    worker_requests_sensor(dg.build_sensor_context(instance=instance, resources=archive.defs().resources))
    assert responses_of(archive) == {}  # nothing answered twice


def test_a_restoration_without_tier_or_days_takes_the_tenants_defaults(archive, instance, tmp_path, monkeypatch):
    from glacier_pipelines.catalog.restores import RestoreStore
    from glacier_pipelines.defs.intake.worker_sensors import worker_requests_sensor

    config = tmp_path / "tenants.toml"
    config.write_text('[tenants.lab]\nbucket = "archive-test"\nrestore_tier = "Standard"\nrestore_days = 3\n')
    monkeypatch.setenv("GLACIER_TENANTS_CONFIG", str(config))
    data = b"to be restored" * 64
    archive.submit(archive.request("lab", archive.file("r", data), data, requestId="stored"))
    assert archive.run("lab", instance).success
    _put(archive, wr.RESTORATION, "rest-defaults", {"files": [{"requestId": "stored"}]})
    _put(archive, wr.RESTORATION, "rest-own", {"files": [{"requestId": "stored"}], "tier": "Bulk", "days": 9})
    intake.drain_requests(archive.transport(), archive.catalog())
    worker_requests_sensor(dg.build_sensor_context(instance=instance, resources=archive.defs().resources))
    rows = {r["note"].split()[2]: r for r in RestoreStore(archive.catalog()).rows(tenant="lab")}
    assert (rows["rest-defaults"]["tier"], rows["rest-defaults"]["days"]) == ("Standard", 3)
    assert (rows["rest-own"]["tier"], rows["rest-own"]["days"]) == ("Bulk", 9)
    assert rows["rest-own"]["requester"].endswith(".invalid")  # no owner email: never mailed


def test_a_broken_tenants_file_stops_the_tick_loudly_without_answering(archive, instance, tmp_path, monkeypatch):
    from glacier_pipelines.core.tenants import TenantsConfigError
    from glacier_pipelines.defs.intake.worker_sensors import worker_requests_sensor

    config = tmp_path / "tenants.toml"
    config.write_text('[tenants.lab]\nstorage_class = "ONEZONE"\n')
    monkeypatch.setenv("GLACIER_TENANTS_CONFIG", str(config))
    _put(archive, wr.RESTORATION, "rest", {"files": [{"requestId": "x"}]})
    intake.drain_requests(archive.transport(), archive.catalog())
    with pytest.raises(TenantsConfigError, match=r"\[tenants.lab\].storage_class"):
        worker_requests_sensor(dg.build_sensor_context(instance=instance, resources=archive.defs().resources))
    assert responses_of(archive) == {}  # the restoration waits for a usable configuration
