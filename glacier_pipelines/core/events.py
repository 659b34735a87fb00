"""Parse S3 restore notifications read from SQS, and the ``x-amz-restore`` header used by polling.

Plain Python (no dagster import). Three inputs are understood:

1. **S3 event notifications** sent straight to an SQS queue (or through an SNS topic, in which
   case the SQS body is an SNS envelope whose ``Message`` is the S3 notification as a JSON string).
   Format from the AWS doc "Event message structure" (Amazon S3 User Guide,
   https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html)::

       {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-west-2",
                     "eventTime": "1970-01-01T00:00:00.000Z", "eventName": "ObjectRestore:Completed",
                     "s3": {"s3SchemaVersion": "1.0", "configurationId": "...",
                            "bucket": {"name": "...", "ownerIdentity": {...}, "arn": "..."},
                            "object": {"key": "...", "size": 1024, "eTag": "...",
                                       "versionId": "...", "sequencer": "..."}},
                     "glacierEventData": {"restoreEventData": {
                         "lifecycleRestorationExpiryTime": "1970-01-01T00:00:00.000Z",
                         "lifecycleRestoreStorageClass": "GLACIER"}}}]}

   Per that doc: ``eventName`` is the event type *without* the ``s3:`` prefix; "The object key name
   value is URL encoded. For example, "red flower.jpg" becomes "red+flower.jpg"" (form encoding,
   so it is decoded with :func:`urllib.parse.unquote_plus`); ``glacierEventData`` is only present on
   ``ObjectRestore:Completed`` events; ``versionId`` is only present for versioned buckets. The same
   doc gives the test message S3 sends when a notification configuration is saved::

       {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "...", "Bucket": "...", ...}

2. **Amazon EventBridge events** (routed to SQS by an EventBridge rule). Format from the AWS doc
   "EventBridge event message structure" (Amazon S3 User Guide,
   https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html), example
   "Object restore completed"::

       {"version": "0", "id": "...", "detail-type": "Object Restore Completed", "source": "aws.s3",
        "account": "111122223333", "time": "2021-11-12T00:00:00Z", "region": "ca-central-1",
        "resources": ["arn:aws:s3:::DOC-EXAMPLE-BUCKET1"],
        "detail": {"version": "0", "bucket": {"name": "DOC-EXAMPLE-BUCKET1"},
                   "object": {"key": "example-key", "size": 5, "etag": "...", "version-id": "..."},
                   "request-id": "...", "requester": "s3.amazonaws.com",
                   "restore-expiry-time": "2021-11-13T00:00:00Z", "source-storage-class": "GLACIER"}}

   The detail-types for restores, from "Amazon EventBridge mapping and troubleshooting" (same
   guide): ObjectRestore:Post -> "Object Restore Initiated", ObjectRestore:Completed -> "Object
   Restore Completed", ObjectRestore:Delete -> "Object Restore Expired".

   Key encoding: the EventBridge doc does not say whether ``detail.object.key`` is URL encoded.
   AWS's own Lambda Powertools for Python decodes it with ``unquote_plus`` exactly like the
   notification key (``S3EventBridgeNotificationObject.key``), so this module does the same. Keys
   therefore round-trip only when the producer encodes them as S3 does (moto's EventBridge
   emulation sends the raw key, which is only safe for keys without '+' and '%').

3. **The ``x-amz-restore`` header** (HeadObject ``Restore``), documented in the HeadObject API
   reference as ``ongoing-request="true"`` while the restore runs and
   ``ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"`` once the copy is
   available (the date is RFC 1123, parsed with :func:`email.utils.parsedate_to_datetime`).

Every failure on malformed input is an :class:`EventParseError` (a ``ValueError``); nothing else
escapes. Records that are well formed but not restore events are reported in
:attr:`ParsedMessage.ignored` rather than raised.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote_plus

__all__ = [
    "MAX_RUN_KEY_LENGTH",
    "EventParseError",
    "ParsedMessage",
    "RestoreEvent",
    "RestoreStatus",
    "parse_iso8601",
    "parse_restore_header",
    "parse_restore_message",
]

#: Upper bound on :attr:`RestoreEvent.run_key`.
MAX_RUN_KEY_LENGTH = 1000

# S3 notification eventName (no "s3:" prefix per the doc; tolerated anyway) -> kind.
_S3_EVENT_KINDS = {
    "ObjectRestore:Post": "initiated",
    "ObjectRestore:Completed": "completed",
    "ObjectRestore:Delete": "expired",
}
# EventBridge detail-type -> kind ("Amazon EventBridge mapping and troubleshooting").
_EVENTBRIDGE_KINDS = {
    "Object Restore Initiated": "initiated",
    "Object Restore Completed": "completed",
    "Object Restore Expired": "expired",
}
_EVENTBRIDGE_SOURCE = "aws.s3"
# SNS -> SQS -> SNS ... nesting is not a thing, but bound the unwrapping anyway.
_MAX_ENVELOPE_DEPTH = 3


class EventParseError(ValueError):
    """A message or header is malformed; ``str(exc)`` says what is wrong."""


@dataclass(frozen=True)
class RestoreEvent:
    kind: str  # "completed" | "initiated" | "expired"
    bucket: str
    key: str  # decoded object key
    version_id: str | None
    event_time: str  # as given by the producer (ISO 8601)
    expiry: datetime | None  # restored copy expiry, tz-aware UTC
    storage_class: str | None  # source storage class
    source: str  # "s3" | "eventbridge"

    @property
    def run_key(self) -> str:
        """Unique per event: ``bucket/key/version-or-null/event_time``, at most 1000 characters.

        When that is too long, the key part is replaced by ``sha256:<hex of the UTF-8 key>``; if it
        is still too long (absurd version id or time), the whole string is hashed.
        """
        version = self.version_id or "null"
        full = f"{self.bucket}/{self.key}/{version}/{self.event_time}"
        if len(full) <= MAX_RUN_KEY_LENGTH:
            return full
        digest = hashlib.sha256(self.key.encode("utf-8", "surrogatepass")).hexdigest()
        hashed = f"{self.bucket}/sha256:{digest}/{version}/{self.event_time}"
        if len(hashed) <= MAX_RUN_KEY_LENGTH:
            return hashed
        return "sha256:" + hashlib.sha256(full.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class ParsedMessage:
    events: list[RestoreEvent] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # human-readable reasons for skipped records


@dataclass(frozen=True)
class RestoreStatus:
    ongoing: bool
    expiry: datetime | None  # tz-aware UTC


# -- helpers ------------------------------------------------------------------------------------


def _describe(value: Any) -> str:
    """Short, safe description of a JSON value for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _get_path(obj: Any, path: tuple[str, ...], where: str) -> Any:
    """Walk nested objects; a missing step or a non-object along the way is an EventParseError."""
    current = obj
    walked: list[str] = []
    for step in path:
        if not isinstance(current, dict):
            shown = ".".join(walked) or "record"
            raise EventParseError(f"{where}: {shown} is {_type_name(current)}, expected an object")
        walked.append(step)
        if step not in current:
            raise EventParseError(f"{where}: missing {'.'.join(walked)}")
        current = current[step]
    return current


def _require_str(obj: Any, path: tuple[str, ...], where: str) -> str:
    value = _get_path(obj, path, where)
    if not isinstance(value, str) or not value:
        raise EventParseError(f"{where}: {'.'.join(path)} must be a non-empty string, got {_describe(value)}")
    _check_encodable(value, ".".join(path), where)
    return value


def _optional_str(obj: dict[str, Any], name: str, where: str) -> str | None:
    value = obj.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise EventParseError(f"{where}: {name} must be a string, got {_describe(value)}")
    _check_encodable(value, name, where)
    return value


def _check_encodable(value: str, name: str, where: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise EventParseError(f"{where}: {name} is not valid Unicode (lone surrogate)") from None


def _optional_object(obj: dict[str, Any], name: str, where: str) -> dict[str, Any] | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise EventParseError(f"{where}: {name} is {_type_name(value)}, expected an object")
    return value


def _decode_key(raw: str, what: str, where: str) -> str:
    key = unquote_plus(raw, encoding="utf-8", errors="strict") if "%" in raw or "+" in raw else raw
    if not key:
        raise EventParseError(f"{where}: {what} decodes to an empty key")
    _check_encodable(key, what, where)
    return key


def _safe_decode_key(raw: str, what: str, where: str) -> str:
    try:
        return _decode_key(raw, what, where)
    except UnicodeDecodeError:
        raise EventParseError(f"{where}: {what} {_describe(raw)} is not valid percent-encoded UTF-8") from None


def parse_iso8601(value: str) -> datetime:
    """ISO 8601 (``Z`` suffix and fractional seconds allowed) -> tz-aware UTC. Naive means UTC."""
    if not isinstance(value, str) or not value.strip():
        raise EventParseError(f"timestamp must be a non-empty string, got {_describe(value)}")
    try:
        parsed = datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError, TypeError):
        raise EventParseError(f"timestamp {_describe(value)} is not ISO 8601") from None


def _optional_timestamp(obj: dict[str, Any], name: str, where: str) -> datetime | None:
    value = _optional_str(obj, name, where)
    if value is None:
        return None
    try:
        return parse_iso8601(value)
    except EventParseError as exc:
        raise EventParseError(f"{where}: {name}: {exc}") from None


def _load_json(text: str | bytes, what: str) -> Any:
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventParseError(f"{what} is not UTF-8: {exc}") from None
    if not isinstance(text, str):
        raise EventParseError(f"{what} must be str or bytes, got {type(text).__name__}")
    try:
        return json.loads(text)
    except RecursionError:
        raise EventParseError(f"{what} is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise EventParseError(f"{what} is not JSON: {exc}") from None


# -- S3 event notification ------------------------------------------------------------------------


def _parse_s3_records(message: dict[str, Any], result: ParsedMessage) -> None:
    records = message["Records"]
    if not isinstance(records, list):
        raise EventParseError(f"'Records' is {_type_name(records)}, expected an array")
    if not records:
        result.ignored.append("S3 notification with an empty 'Records' array")
    for index, record in enumerate(records):
        where = f"Records[{index}]"
        if not isinstance(record, dict):
            raise EventParseError(f"{where} is {_type_name(record)}, expected an object")
        name = record.get("eventName")
        if not isinstance(name, str):
            result.ignored.append(f"{where} has no eventName")
            continue
        short = name[3:] if name.startswith("s3:") else name
        kind = _S3_EVENT_KINDS.get(short)
        if kind is None:
            result.ignored.append(f"{where}: event {name} is not a restore event")
            continue
        bucket = _require_str(record, ("s3", "bucket", "name"), where)
        raw_key = _require_str(record, ("s3", "object", "key"), where)
        key = _safe_decode_key(raw_key, "s3.object.key", where)
        obj = record["s3"]["object"]
        version_id = _optional_str(obj, "versionId", f"{where}.s3.object")
        event_time = _require_str(record, ("eventTime",), where)
        expiry = storage_class = None
        glacier = _optional_object(record, "glacierEventData", where)
        if glacier is not None:
            restore = _optional_object(glacier, "restoreEventData", f"{where}.glacierEventData")
            if restore is not None:
                inner = f"{where}.glacierEventData.restoreEventData"
                expiry = _optional_timestamp(restore, "lifecycleRestorationExpiryTime", inner)
                storage_class = _optional_str(restore, "lifecycleRestoreStorageClass", inner)
        result.events.append(
            RestoreEvent(
                kind=kind,
                bucket=bucket,
                key=key,
                version_id=version_id,
                event_time=event_time,
                expiry=expiry,
                storage_class=storage_class,
                source="s3",
            )
        )


# -- EventBridge ----------------------------------------------------------------------------------


def _parse_eventbridge(message: dict[str, Any], result: ParsedMessage) -> None:
    detail_type = message.get("detail-type")
    source = message.get("source")
    if not isinstance(detail_type, str):
        result.ignored.append(f"EventBridge event with detail-type {_describe(detail_type)}")
        return
    if source != _EVENTBRIDGE_SOURCE:
        result.ignored.append(f"EventBridge event {detail_type!r} from source {_describe(source)}, not aws.s3")
        return
    kind = _EVENTBRIDGE_KINDS.get(detail_type)
    if kind is None:
        result.ignored.append(f"EventBridge event {detail_type!r} is not a restore event")
        return
    where = "EventBridge event"
    bucket = _require_str(message, ("detail", "bucket", "name"), where)
    raw_key = _require_str(message, ("detail", "object", "key"), where)
    key = _safe_decode_key(raw_key, "detail.object.key", where)
    version_id = _optional_str(message["detail"]["object"], "version-id", f"{where} detail.object")
    event_time = _require_str(message, ("time",), where)
    detail = message["detail"]
    expiry = _optional_timestamp(detail, "restore-expiry-time", f"{where} detail")
    storage_class = _optional_str(detail, "source-storage-class", f"{where} detail")
    result.events.append(
        RestoreEvent(
            kind=kind,
            bucket=bucket,
            key=key,
            version_id=version_id,
            event_time=event_time,
            expiry=expiry,
            storage_class=storage_class,
            source="eventbridge",
        )
    )


# -- dispatch -------------------------------------------------------------------------------------


def _parse_object(message: Any, result: ParsedMessage, depth: int) -> None:
    if not isinstance(message, dict):
        raise EventParseError(f"message is {_type_name(message)}, expected a JSON object")

    # SNS envelope (S3 -> SNS -> SQS without raw message delivery).
    if message.get("Type") in ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation") and (
        "Message" in message or "TopicArn" in message
    ):
        if message["Type"] != "Notification":
            result.ignored.append(f"SNS {message['Type']} message")
            return
        inner = message.get("Message")
        if not isinstance(inner, str):
            raise EventParseError(f"SNS notification 'Message' is {_type_name(inner)}, expected a JSON string")
        if depth >= _MAX_ENVELOPE_DEPTH:
            raise EventParseError("SNS envelopes nested too deeply")
        _parse_object(_load_json(inner, "SNS 'Message'"), result, depth + 1)
        return

    if message.get("Event") == "s3:TestEvent":
        bucket = message.get("Bucket")
        suffix = f" for bucket {bucket!r}" if isinstance(bucket, str) else ""
        result.ignored.append(f"s3:TestEvent{suffix}")
        return

    if "Records" in message:
        _parse_s3_records(message, result)
        return

    if "detail-type" in message or "detail" in message:
        _parse_eventbridge(message, result)
        return

    keys = ", ".join(sorted(str(k) for k in message)[:5]) or "none"
    result.ignored.append(f"unrecognised message (no Records, detail-type or s3:TestEvent; keys: {_describe(keys)})")


def parse_restore_message(body: str | bytes) -> ParsedMessage:
    """Parse one SQS message body into restore events.

    Accepts an S3 event notification (``{"Records": [...]}``, possibly several records), the same
    wrapped in an SNS envelope (``{"Type": "Notification", "Message": "<json string>"}``), the
    ``s3:TestEvent`` message (no events, one ignored reason) and an EventBridge S3 event
    (``{"detail-type": "Object Restore Completed", "source": "aws.s3", ...}``).

    Raises :class:`EventParseError` (and nothing else) when the body is not JSON, not an object,
    has a malformed structure (e.g. ``Records`` not an array), or a restore record lacks its
    bucket, key or time or carries a malformed optional field. Non-restore records are listed in
    ``ignored`` with a reason.
    """
    result = ParsedMessage()
    try:
        _parse_object(_load_json(body, "message body"), result, 0)
    except EventParseError:
        raise
    except (TypeError, KeyError, AttributeError, ValueError, IndexError, RecursionError, UnicodeError) as exc:
        # Defensive: odd shapes must never leak anything but EventParseError.
        raise EventParseError(f"malformed message: {type(exc).__name__}: {exc}") from None
    return result


# -- x-amz-restore header ---------------------------------------------------------------------------

_HEADER_PAIR = re.compile(r'\s*([A-Za-z][A-Za-z0-9-]*)\s*=\s*"([^"]*)"\s*')
_HEADER_SEPARATOR = re.compile(r"\s*,\s*")


def parse_restore_header(value: str | None) -> RestoreStatus | None:
    """Parse ``x-amz-restore`` / HeadObject ``Restore``.

    ``'ongoing-request="true"'`` -> ongoing, no expiry; ``'ongoing-request="false", expiry-date="Fri,
    21 Dec 2012 00:00:00 GMT"'`` -> done, expiry tz-aware UTC. ``None`` or blank -> ``None`` (no
    restore was requested). Unknown ``name="value"`` pairs are ignored; anything malformed raises
    :class:`EventParseError`.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventParseError(f"x-amz-restore header must be a string, got {type(value).__name__}")
    if not value.strip():
        return None
    pairs: dict[str, str] = {}
    pos = 0
    while True:
        match = _HEADER_PAIR.match(value, pos)
        if match is None:
            raise EventParseError(f"x-amz-restore header {_describe(value)} is malformed at position {pos}")
        name = match.group(1).lower()
        if name in pairs:
            raise EventParseError(f"x-amz-restore header {_describe(value)} repeats {name}")
        pairs[name] = match.group(2)
        pos = match.end()
        if pos == len(value):
            break
        sep = _HEADER_SEPARATOR.match(value, pos)
        if sep is None or sep.end() == len(value):
            raise EventParseError(f"x-amz-restore header {_describe(value)} is malformed at position {pos}")
        pos = sep.end()

    ongoing_text = pairs.get("ongoing-request")
    if ongoing_text is None:
        raise EventParseError(f"x-amz-restore header {_describe(value)} has no ongoing-request")
    if ongoing_text.lower() not in ("true", "false"):
        raise EventParseError(f"x-amz-restore ongoing-request must be \"true\" or \"false\", got {ongoing_text!r}")
    ongoing = ongoing_text.lower() == "true"

    expiry: datetime | None = None
    expiry_text = pairs.get("expiry-date")
    if expiry_text is not None:
        try:
            expiry = email.utils.parsedate_to_datetime(expiry_text)
            if expiry is None:  # older Pythons returned None for garbage
                raise ValueError(expiry_text)
            if expiry.tzinfo is None:  # "-0000" means UTC with no zone information
                expiry = expiry.replace(tzinfo=timezone.utc)
            expiry = expiry.astimezone(timezone.utc)
        except (TypeError, ValueError, IndexError, OverflowError):
            raise EventParseError(f"x-amz-restore expiry-date {expiry_text!r} is not an RFC 1123 date") from None
    return RestoreStatus(ongoing=ongoing, expiry=expiry)
