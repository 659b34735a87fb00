"""core/faults.py: one reading of S3's client errors (code, status, not-found) and one classification of every fault."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from glacier_pipelines.core import faults


def client_error(code: str | None, status: int | None, message: str = "") -> ClientError:
    response: dict = {"ResponseMetadata": {"HTTPStatusCode": status} if status is not None else {}}
    if code is not None:
        response["Error"] = {"Code": code, "Message": message}
    return ClientError(response, "HeadObject")


@pytest.mark.parametrize(
    ("exc", "code", "status"),
    [
        (client_error("NoSuchKey", 404, "The specified key does not exist."), "NoSuchKey", 404),
        (client_error(None, 404), "404", 404),  # HEAD: no body, so no code, only the status
        (client_error("SlowDown", 503), "SlowDown", 503),
        (client_error(None, None), "", None),
        (ValueError("not S3"), "", None),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "", None),
    ],
)
def test_error_code_and_status_are_read_one_way(exc, code, status):
    assert faults.error_code(exc) == code
    assert faults.http_status(exc) == status
    assert faults.client_error_code(exc) == code  # the earlier name reads the same


def test_not_found_and_message():
    assert faults.is_not_found(client_error("NoSuchKey", 404))
    assert faults.is_not_found(client_error(None, 404))
    assert not faults.is_not_found(client_error("AccessDenied", 403))
    assert not faults.is_not_found(KeyError("NoSuchKey"))
    assert faults.error_message(client_error("InvalidDigest", 400, "The Content-MD5 you specified was invalid.")).startswith(
        "The Content-MD5"
    )
    assert faults.error_message(RuntimeError("x")) == ""


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (client_error("NoSuchBucket", 404), "configuration"),
        (client_error(None, 403), "configuration"),
        (client_error("SlowDown", 503), "transient"),
        (client_error(None, 500), "transient"),
        (client_error(None, 429), "transient"),
        (client_error("NoSuchKey", 404), "request"),
        (NoCredentialsError(), "configuration"),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "transient"),
        (faults.ArchiveFault("bucket gone", "configuration"), "configuration"),
        (ValueError("bad body"), "request"),
    ],
)
def test_classification_uses_the_same_reading(exc, kind):
    assert faults.classify(exc) == kind


def test_describe_names_the_setting_to_fix():
    assert "GLACIER_BUCKET" in faults.describe(client_error("NoSuchBucket", 404))
    assert "AWS_ACCESS_KEY_ID" in faults.describe(NoCredentialsError())
