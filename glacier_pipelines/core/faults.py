"""Transient, configuration or request fault: decided here, once, for every S3 and source error.

- **transient**: the service may answer next time (connection refused, timeouts, throttling,
  5xx). The request keeps its place and a later pass finishes it.
- **configuration**: no retry can help until an operator fixes a setting (credentials refused,
  bucket missing). The request keeps its place too, and the command stops at once.
- **request**: what the request itself got wrong (checksum mismatch, missing or refused
  source, bad body). Only these end a request with ERROR.
"""

from __future__ import annotations

from typing import Literal

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

Kind = Literal["transient", "configuration", "request"]

# Error codes S3 answers when the operator's settings are wrong, and what to fix.
CONFIGURATION_CODES = {
    "NoSuchBucket": "GLACIER_BUCKET names a bucket that does not exist",
    "InvalidAccessKeyId": "the AWS access key is not known (AWS_ACCESS_KEY_ID / the profile)",
    "SignatureDoesNotMatch": "the AWS secret key does not match (AWS_SECRET_ACCESS_KEY / the profile)",
    "AccessDenied": "the AWS credentials may not use this bucket (its policy or the IAM role)",
    "AllAccessDisabled": "access to the bucket is disabled",
    "InvalidBucketName": "GLACIER_BUCKET is not a valid bucket name",
    "AuthorizationHeaderMalformed": "AWS_DEFAULT_REGION does not match the bucket's region",
    "PermanentRedirect": "AWS_DEFAULT_REGION does not match the bucket's region",
    "ExpiredToken": "the AWS session token has expired",
    "InvalidToken": "the AWS session token is not valid",
    "KMS.NotFoundException": "GLACIER_SSE_KMS_KEY_ID names a KMS key that does not exist",
    "KMS.DisabledException": "the KMS key of GLACIER_SSE_KMS_KEY_ID is disabled",
}
TRANSIENT_CODES = {
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalError",
    "ServiceUnavailable",
    "503",
    "500",
    "502",
    "504",
    "OperationAborted",
    "TooManyRequests",
}


class ArchiveFault(Exception):
    """A fault that leaves requests in place: the step fails loudly so that a later pass finishes them."""

    kind: Kind = "transient"

    def __init__(self, message: str, kind: Kind = "transient"):
        super().__init__(message)
        self.kind = kind


# A missing key answers NoSuchKey to GET and a bare 404 to HEAD (no body, so no code).
NOT_FOUND_CODES = ("NoSuchKey", "404", "NotFound")


def error_code(exc: BaseException) -> str:
    """S3's error code of a ``ClientError`` (``NoSuchKey``, ``SlowDown``...), else its HTTP status as text.

    The one place that reads ``exc.response``: a HEAD answer has no body, so its code is the
    status (``"404"``); anything that is not a ``ClientError`` gives ``""``.
    """
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or http_status(exc) or "")
    return ""


def http_status(exc: BaseException) -> int | None:
    """The HTTP status S3 answered with, or None (not a ``ClientError``, or no answer recorded)."""
    if isinstance(exc, ClientError):
        return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or None
    return None


def error_message(exc: BaseException) -> str:
    """S3's own words for a ``ClientError`` (``Error.Message``), or ``""``."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Message") or "")
    return ""


def is_not_found(exc: BaseException) -> bool:
    """Whether S3 answered that the key (or the upload) is not there."""
    return error_code(exc) in NOT_FOUND_CODES


client_error_code = error_code  # the name earlier callers use


def classify(exc: BaseException) -> Kind:
    """What kind of fault an exception raised by boto3 (or our S3 helpers, or an ObjectStore) is."""
    if isinstance(exc, ArchiveFault):
        return exc.kind
    kind = getattr(exc, "kind", None)  # already classified by these rules (core/objectstore's StoreError)
    if kind in ("transient", "configuration", "request"):
        return kind
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return "configuration"
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in CONFIGURATION_CODES:
            return "configuration"
        status = http_status(exc) or 0
        if code in TRANSIENT_CODES or status >= 500 or status == 429:
            return "transient"
        if status == 403:
            return "configuration"
        return "request"
    if isinstance(exc, BotoCoreError):  # connection refused, timeouts, read errors, retries exhausted
        return "transient"
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return "transient"
    return "request"


def describe(exc: BaseException) -> str:
    """One line for an operator: for a configuration fault, the setting to fix."""
    code = error_code(exc)
    if code in CONFIGURATION_CODES:
        return f"S3 refused the request ({code}): {CONFIGURATION_CODES[code]}"
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return "no AWS credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
    return f"{type(exc).__name__}: {exc}"
