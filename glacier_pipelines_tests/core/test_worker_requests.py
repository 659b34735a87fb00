"""Deletion, restoration and availability request bodies: validated at the edge, never raising."""

from __future__ import annotations

import json

import pytest

from glacier_pipelines.core import worker_requests as wr

ENVELOPE = {"tenant": "lab", "requestId": "d-1", "owner": "ana@example.org", "session": "s"}


def test_content_types_are_distinct_and_storage_stays_the_default():
    assert wr.STORAGE == "s3-glacier-storage-worker"
    assert len(set(wr.CONTENT_TYPES)) == 4
    assert not wr.is_worker_content_type(wr.STORAGE) and all(wr.is_worker_content_type(c) for c in wr.CONTENT_TYPES[1:])


@pytest.mark.parametrize("file", [{"requestId": "r-1"}, {"checksum": "AB" * 16}, {"url": "s3://bucket/archive/lab/x"}])
def test_a_deletion_names_one_file_one_way(file):
    parsed = wr.parse_worker_request(wr.DELETION, json.dumps({"file": file}).encode(), ENVELOPE)
    assert parsed.valid, parsed.errors
    assert parsed.kind == "DELETION" and parsed.envelope.tenant == "lab"
    if "checksum" in file:
        assert parsed.request.file.checksum == "ab" * 16  # normalized


@pytest.mark.parametrize(
    "body, error",
    [
        ({"file": {"requestId": "r", "checksum": "ab" * 16}}, "exactly one of requestId, checksum or url"),
        ({"file": {"url": "file:///etc/passwd"}}, "url must be a stored object URL"),
        ({"file": {"checksum": "xyz12345"}}, "checksum must be hexadecimal"),
        ({}, "file: is required"),
        ({"file": {"requestId": "r"}, "force": True}, "force: unknown field"),
        ([1, 2], "body: must be a JSON object, got list"),
    ],
)
def test_bad_deletions_say_which_field_is_wrong(body, error):
    parsed = wr.parse_worker_request(wr.DELETION, json.dumps(body), ENVELOPE)
    assert not parsed.valid and parsed.request is None and parsed.envelope is None
    assert any(error in e for e in parsed.errors), parsed.errors
    assert (parsed.tenant, parsed.request_id) == ("lab", "d-1")  # still addressable for its INVALID_CONTENT answer


def test_restoration_tier_is_normalized_and_days_bounded():
    parsed = wr.parse_worker_request(wr.RESTORATION, {"files": [{"requestId": "r"}], "tier": "standard", "days": 3}, ENVELOPE)
    assert parsed.valid and parsed.request.tier == "Standard" and parsed.request.days == 3
    for body, error in (
        ({"files": [{"requestId": "r"}], "tier": "Fast"}, "tier must be one of"),
        ({"files": [{"requestId": "r"}], "days": 0}, "days"),
        ({"files": [{"requestId": "r"}], "days": "3"}, "days"),
        ({"files": []}, "files"),
    ):
        parsed = wr.parse_worker_request(wr.RESTORATION, body, ENVELOPE)
        assert not parsed.valid and any(error in e for e in parsed.errors), (body, parsed.errors)


def test_availability_takes_a_bounded_list_of_files():
    assert wr.parse_worker_request(wr.AVAILABILITY, {"files": [{"requestId": "r"}] * 3}, ENVELOPE).valid
    parsed = wr.parse_worker_request(wr.AVAILABILITY, {"files": [{"requestId": "r"}] * (wr.MAX_FILES + 1)}, ENVELOPE)
    assert not parsed.valid and parsed.errors


@pytest.mark.parametrize(
    "envelope, error",
    [
        ({"requestId": "d-1"}, "tenant: is required"),
        ({"tenant": "Lab!", "requestId": "d-1"}, "tenant"),
        ({"tenant": "lab", "requestId": "bad\x00id"}, "requestId"),
    ],
)
def test_the_envelope_is_validated_like_a_storage_requests(envelope, error):
    parsed = wr.parse_worker_request(wr.AVAILABILITY, {"files": [{"requestId": "r"}]}, envelope)
    assert not parsed.valid and any(error in e for e in parsed.errors), parsed.errors


def test_garbage_never_raises():
    for body in (b"\xff\xfe", b"{oops", "[" * 100_000, None, 42):
        parsed = wr.parse_worker_request(wr.DELETION, body, ENVELOPE)
        assert not parsed.valid and parsed.errors[0].startswith("body:")
    unknown = wr.parse_worker_request("s3-glacier-teleport-worker", b"{}", ENVELOPE)
    assert not unknown.valid and "is not one of" in unknown.errors[0]


def test_refusals_use_the_same_words_whoever_owns_the_file():
    from glacier_pipelines.core.restores import FileSelector

    assert wr.not_found("lab", FileSelector(requestId="x")) == "requestId x: no archived file of tenant lab has that name"
