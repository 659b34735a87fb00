"""SQS message bodies (S3 notifications, SNS envelopes, EventBridge events) parsed into restore events.

The restore records themselves are pydantic models (:class:`S3RestoreRecord`,
:class:`EventBridgeRestoreEvent`); the envelope around them is dispatched by hand, since a
message that is not a restore event is reported in ``ignored``, not refused.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import unquote_plus

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from glacier_pipelines.core import validation
from glacier_pipelines.core.events.model import EventParseError, ParsedMessage, RestoreEvent, parse_iso8601
from glacier_pipelines.core.events.model import describe as _describe
from glacier_pipelines.core.events.model import type_name as _type_name

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


# -- the records as pydantic models ---------------------------------------------------------------------


def _encodable(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode (lone surrogate)") from None
    return value


def _decoded_key(raw: str) -> str:
    """Keys arrive form-encoded ("red flower.jpg" as "red+flower.jpg"); decoded strictly as UTF-8."""
    try:
        key = unquote_plus(raw, encoding="utf-8", errors="strict") if "%" in raw or "+" in raw else raw
    except UnicodeDecodeError:
        raise ValueError(f"{_describe(raw)} is not valid percent-encoded UTF-8") from None
    if not key:
        raise ValueError("decodes to an empty key")
    return _encodable(key)


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


def _timestamp(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {_describe(value)}")
    return parse_iso8601(value)


Text = Annotated[str, Field(strict=True, min_length=1), AfterValidator(_encodable)]
Key = Annotated[str, Field(strict=True, min_length=1), AfterValidator(_decoded_key)]
OptionalText = Annotated[Text | None, BeforeValidator(_blank_is_none)]
Timestamp = Annotated[datetime | None, BeforeValidator(_timestamp)]


class _Part(BaseModel):
    # Producers add fields over time (ownerIdentity, sequencer, requester...): only what is read is checked.
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Bucket(_Part):
    name: Text


class _S3Object(_Part):
    key: Key
    version_id: OptionalText = Field(None, alias="versionId")


class _S3Entity(_Part):
    bucket: _Bucket
    object_: _S3Object = Field(alias="object")


class _RestoreEventData(_Part):
    expiry: Timestamp = Field(None, alias="lifecycleRestorationExpiryTime")
    storage_class: OptionalText = Field(None, alias="lifecycleRestoreStorageClass")


class _GlacierEventData(_Part):
    restore: _RestoreEventData | None = Field(None, alias="restoreEventData")


class S3RestoreRecord(_Part):
    """One ``Records[i]`` of an S3 event notification whose eventName is a restore event."""

    s3: _S3Entity
    event_time: Text = Field(alias="eventTime")
    glacier: _GlacierEventData | None = Field(None, alias="glacierEventData")


class _BridgeObject(_Part):
    key: Key
    version_id: OptionalText = Field(None, alias="version-id")


class _BridgeDetail(_Part):
    bucket: _Bucket
    object_: _BridgeObject = Field(alias="object")
    expiry: Timestamp = Field(None, alias="restore-expiry-time")
    storage_class: OptionalText = Field(None, alias="source-storage-class")


class EventBridgeRestoreEvent(_Part):
    """An EventBridge event from aws.s3 whose detail-type is a restore event."""

    detail: _BridgeDetail
    time: Text


def _validate(model: type[_Part], data: Any, where: str) -> Any:
    """``model`` from ``data``, or an :class:`EventParseError` naming each bad field under ``where``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise EventParseError("; ".join(_explain(e, where) for e in exc.errors(include_url=False))) from None


def _explain(error: Any, where: str) -> str:
    at, kind, value = validation.path(tuple(error["loc"])), error["type"], error.get("input")
    if kind == "missing":
        return f"{where}: missing {at}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{where}: {at} is {_type_name(value)}, expected an object"
    if kind in ("string_type", "string_too_short"):
        return f"{where}: {at} must be a non-empty string, got {_describe(value)}"
    if kind == "string_unicode":
        return f"{where}: {at} is not valid Unicode (lone surrogate)"
    message = str((error.get("ctx") or {}).get("error") or error["msg"]).removeprefix("Value error, ")
    return f"{where}: {at} {message}" if message.startswith(("is ", "decodes ")) else f"{where}: {at}: {message}"


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
        r = _validate(S3RestoreRecord, record, where)
        restore = r.glacier.restore if r.glacier is not None else None
        result.events.append(
            RestoreEvent(
                kind=kind,
                bucket=r.s3.bucket.name,
                key=r.s3.object_.key,
                version_id=r.s3.object_.version_id,
                event_time=r.event_time,
                expiry=restore.expiry if restore else None,
                storage_class=restore.storage_class if restore else None,
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
    e = _validate(EventBridgeRestoreEvent, message, "EventBridge event")
    d = e.detail
    result.events.append(
        RestoreEvent(
            kind=kind,
            bucket=d.bucket.name,
            key=d.object_.key,
            version_id=d.object_.version_id,
            event_time=e.time,
            expiry=d.expiry,
            storage_class=d.storage_class,
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
