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

By concern: ``model`` (the parsed forms), ``messages`` (SQS bodies, the records as pydantic
models), ``header`` (``x-amz-restore``).
"""

from glacier_pipelines.core.events.header import parse_restore_header
from glacier_pipelines.core.events.messages import EventBridgeRestoreEvent, S3RestoreRecord, parse_restore_message
from glacier_pipelines.core.events.model import (
    MAX_RUN_KEY_LENGTH,
    EventParseError,
    ParsedMessage,
    RestoreEvent,
    RestoreStatus,
    parse_iso8601,
)

__all__ = [
    "MAX_RUN_KEY_LENGTH",
    "EventBridgeRestoreEvent",
    "EventParseError",
    "ParsedMessage",
    "RestoreEvent",
    "RestoreStatus",
    "S3RestoreRecord",
    "parse_iso8601",
    "parse_restore_header",
    "parse_restore_message",
]
