"""Tests for glacier_pipelines.core.events: S3 / SNS / EventBridge restore notifications and x-amz-restore.

Message fixtures follow the AWS docs "Event message structure" (S3 User Guide,
notification-content-structure) and "EventBridge event message structure" (S3 User Guide, ev-events).
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from glacier_pipelines.core.events import (
    MAX_RUN_KEY_LENGTH,
    EventParseError,
    ParsedMessage,
    RestoreEvent,
    RestoreStatus,
    parse_restore_header,
    parse_restore_message,
)

BUCKET = "archive-bucket"
ENCODED_KEY = "archive/lab/my+file%2Fname%2B1.txt"
DECODED_KEY = "archive/lab/my file/name+1.txt"
VERSION = "096fKKXTRTtl3on89fVO.nfljtsv6qko"
EVENT_TIME = "2024-05-02T10:15:30.123Z"


def s3_record(
    event_name: str = "ObjectRestore:Completed",
    key: str = ENCODED_KEY,
    *,
    version_id: str | None = VERSION,
    event_time: str = EVENT_TIME,
    glacier: bool = True,
) -> dict:
    """One record shaped like the doc's version 2.1 example (glacierEventData only on Completed)."""
    obj = {"key": key, "size": 1024, "eTag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": "0055AED6DCD90281E5"}
    if version_id is not None:
        obj["versionId"] = version_id
    record = {
        "eventVersion": "2.3" if event_name == "ObjectRestore:Delete" else "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-west-2",
        "eventTime": event_time,
        "eventName": event_name,
        "userIdentity": {"principalId": "AIDAJDPLRKLG7UEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "restore-notifications",
            "bucket": {"name": BUCKET, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"}, "arn": f"arn:aws:s3:::{BUCKET}"},
            "object": obj,
        },
    }
    if glacier and event_name == "ObjectRestore:Completed":
        record["glacierEventData"] = {
            "restoreEventData": {
                "lifecycleRestorationExpiryTime": "2024-05-09T00:00:00.000Z",
                "lifecycleRestoreStorageClass": "DEEP_ARCHIVE",
            }
        }
    return record


def s3_message(*records: dict) -> str:
    return json.dumps({"Records": list(records)})


def eventbridge_event(detail_type: str = "Object Restore Completed", key: str = "example-key", **detail_extra) -> dict:
    """Shaped like the doc's "Object restore completed" EventBridge example."""
    detail = {
        "version": "0",
        "bucket": {"name": BUCKET},
        "object": {"key": key, "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184", "version-id": "KKsjUC1.6gIjqtvhfg5AdMI0eCePIiT3"},
        "request-id": "189F19CB7FB1B6A4",
        "requester": "s3.amazonaws.com",
    }
    if detail_type == "Object Restore Completed":
        detail["restore-expiry-time"] = "2021-11-13T00:00:00Z"
    if detail_type in ("Object Restore Completed", "Object Restore Initiated"):
        detail["source-storage-class"] = "GLACIER"
    detail.update(detail_extra)
    return {
        "version": "0",
        "id": "6924de0d-13e2-6bbf-c0c1-b903b753565e",
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "111122223333",
        "time": "2021-11-12T00:00:00Z",
        "region": "ca-central-1",
        "resources": [f"arn:aws:s3:::{BUCKET}"],
        "detail": detail,
    }


# -- S3 event notifications ---------------------------------------------------------------------


def test_s3_restore_completed_record():
    parsed = parse_restore_message(s3_message(s3_record()))
    assert isinstance(parsed, ParsedMessage)
    assert parsed.ignored == []
    assert parsed.events == [
        RestoreEvent(
            kind="completed",
            bucket=BUCKET,
            key=DECODED_KEY,
            version_id=VERSION,
            event_time=EVENT_TIME,
            expiry=datetime(2024, 5, 9, tzinfo=timezone.utc),
            storage_class="DEEP_ARCHIVE",
            source="s3",
        )
    ]
    event = parsed.events[0]
    assert event.expiry.tzinfo is not None and event.expiry.utcoffset().total_seconds() == 0
    assert event.run_key == f"{BUCKET}/{DECODED_KEY}/{VERSION}/{EVENT_TIME}"
    for part in (BUCKET, DECODED_KEY, VERSION, EVENT_TIME):
        assert part in event.run_key


def test_bytes_body_is_accepted():
    parsed = parse_restore_message(s3_message(s3_record()).encode("utf-8"))
    assert parsed.events[0].key == DECODED_KEY


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("red+flower.jpg", "red flower.jpg"),  # the doc's own example
        ("a%2Fb%2Fc", "a/b/c"),
        ("c%2B%2B.tar.gz", "c++.tar.gz"),
        ("caf%C3%A9/%E6%97%A5%E6%9C%AC%E8%AA%9E+%F0%9F%93%A6.bin", "café/日本語 📦.bin"),
        ("100%25+done", "100% done"),
        ("plain/key.txt", "plain/key.txt"),
    ],
)
def test_s3_keys_are_form_decoded(encoded, decoded):
    parsed = parse_restore_message(s3_message(s3_record(key=encoded)))
    assert parsed.events[0].key == decoded


def test_several_records_and_kinds_in_one_message():
    put = s3_record("ObjectCreated:Put", key="incoming/new.txt")
    body = s3_message(
        s3_record("ObjectRestore:Post", key="a.txt"),
        put,
        s3_record("ObjectRestore:Completed", key="b.txt", version_id=None),
        s3_record("ObjectRestore:Delete", key="c.txt"),
    )
    parsed = parse_restore_message(body)
    assert [(e.kind, e.key) for e in parsed.events] == [("initiated", "a.txt"), ("completed", "b.txt"), ("expired", "c.txt")]
    assert all(e.source == "s3" for e in parsed.events)
    assert len(parsed.ignored) == 1
    assert "ObjectCreated:Put" in parsed.ignored[0] and "not a restore event" in parsed.ignored[0]
    # glacierEventData is only sent for Completed: the others carry no expiry / storage class.
    initiated, completed, expired = parsed.events
    assert initiated.expiry is None and initiated.storage_class is None
    assert expired.expiry is None
    assert completed.version_id is None
    assert completed.run_key == f"{BUCKET}/b.txt/null/{EVENT_TIME}"


def test_s3_prefixed_event_name_is_tolerated():
    parsed = parse_restore_message(s3_message(s3_record("s3:ObjectRestore:Completed")))
    assert parsed.events[0].kind == "completed"


def test_duplicate_records_give_identical_run_keys():
    record = s3_record()
    parsed = parse_restore_message(s3_message(record, copy.deepcopy(record)))
    assert len(parsed.events) == 2
    assert parsed.events[0] == parsed.events[1]
    assert parsed.events[0].run_key == parsed.events[1].run_key


def test_different_event_times_give_different_run_keys():
    first = parse_restore_message(s3_message(s3_record(event_time="2024-05-02T10:15:30.123Z"))).events[0]
    second = parse_restore_message(s3_message(s3_record(event_time="2024-05-03T10:15:30.123Z"))).events[0]
    assert first.run_key != second.run_key


def test_s3_test_event_is_ignored():
    body = json.dumps(
        {
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": "2014-10-13T15:57:02.089Z",
            "Bucket": BUCKET,
            "RequestId": "5582815E1AEA5ADF",
            "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
        }
    )
    parsed = parse_restore_message(body)
    assert parsed.events == []
    assert len(parsed.ignored) == 1 and "s3:TestEvent" in parsed.ignored[0]


def test_sns_wrapped_s3_event():
    inner = s3_message(s3_record())
    envelope = {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:us-west-2:123456789012:restores",
        "Subject": "Amazon S3 Notification",
        "Message": inner,
        "Timestamp": "2024-05-02T10:15:31.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-EXAMPLE.pem",
        "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe",
    }
    parsed = parse_restore_message(json.dumps(envelope))
    assert parsed == parse_restore_message(inner)
    assert parsed.events[0].key == DECODED_KEY


def test_sns_wrapped_test_event_and_bad_sns_message():
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET})
    parsed = parse_restore_message(json.dumps({"Type": "Notification", "Message": test_event}))
    assert parsed.events == [] and "s3:TestEvent" in parsed.ignored[0]
    with pytest.raises(EventParseError, match="SNS 'Message' is not JSON"):
        parse_restore_message(json.dumps({"Type": "Notification", "Message": "{not json"}))
    with pytest.raises(EventParseError, match="Message"):
        parse_restore_message(json.dumps({"Type": "Notification", "Message": {"Records": []}}))


# -- EventBridge -------------------------------------------------------------------------------


def test_eventbridge_restore_completed():
    parsed = parse_restore_message(json.dumps(eventbridge_event()))
    assert parsed.ignored == []
    assert parsed.events == [
        RestoreEvent(
            kind="completed",
            bucket=BUCKET,
            key="example-key",
            version_id="KKsjUC1.6gIjqtvhfg5AdMI0eCePIiT3",
            event_time="2021-11-12T00:00:00Z",
            expiry=datetime(2021, 11, 13, tzinfo=timezone.utc),
            storage_class="GLACIER",
            source="eventbridge",
        )
    ]


def test_eventbridge_restore_initiated_and_expired():
    initiated = parse_restore_message(json.dumps(eventbridge_event("Object Restore Initiated"))).events[0]
    assert (initiated.kind, initiated.expiry, initiated.storage_class) == ("initiated", None, "GLACIER")
    expired = parse_restore_message(json.dumps(eventbridge_event("Object Restore Expired"))).events[0]
    assert expired.kind == "expired"


def test_eventbridge_key_is_decoded_like_s3():
    parsed = parse_restore_message(json.dumps(eventbridge_event(key=ENCODED_KEY)))
    assert parsed.events[0].key == DECODED_KEY


def test_eventbridge_unrelated_events_are_ignored():
    created = eventbridge_event("Object Created")
    parsed = parse_restore_message(json.dumps(created))
    assert parsed.events == []
    assert len(parsed.ignored) == 1 and "Object Created" in parsed.ignored[0]
    other_source = eventbridge_event()
    other_source["source"] = "my.app"
    parsed = parse_restore_message(json.dumps(other_source))
    assert parsed.events == [] and "my.app" in parsed.ignored[0]


def test_eventbridge_missing_key_is_an_error():
    event = eventbridge_event()
    del event["detail"]["object"]["key"]
    with pytest.raises(EventParseError, match=r"detail\.object\.key"):
        parse_restore_message(json.dumps(event))


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("{not json", "not JSON"),
        ("", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        ("[1, 2]", "array, expected a JSON object"),
        ('"Records"', "string, expected a JSON object"),
        ('{"Records": {"eventName": "ObjectRestore:Completed"}}', "'Records' is an object, expected an array"),
        ('{"Records": ["x"]}', r"Records\[0\] is a string"),
    ],
)
def test_malformed_bodies(body, match):
    with pytest.raises(EventParseError, match=match):
        parse_restore_message(body)


def test_restore_record_missing_bucket_name():
    record = s3_record()
    del record["s3"]["bucket"]["name"]
    with pytest.raises(EventParseError, match=r"Records\[0\]: missing s3\.bucket\.name"):
        parse_restore_message(s3_message(record))


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda r: r.pop("s3"), r"missing s3"),
        (lambda r: r["s3"].pop("object"), r"missing s3\.object"),
        (lambda r: r["s3"]["object"].update(key=""), r"s3\.object\.key must be a non-empty string"),
        (lambda r: r["s3"]["object"].update(key=7), r"s3\.object\.key must be a non-empty string"),
        (lambda r: r["s3"].update(bucket="b"), r"s3\.bucket is a string"),
        (lambda r: r.pop("eventTime"), r"missing eventTime"),
        (lambda r: r["s3"]["object"].update(key="%FF%FE"), r"not valid percent-encoded UTF-8"),
        (lambda r: r["glacierEventData"]["restoreEventData"].update(lifecycleRestorationExpiryTime="soon"), "not ISO 8601"),
        (lambda r: r.update(glacierEventData=[1]), "glacierEventData is an array"),
    ],
)
def test_malformed_restore_records(mutate, match):
    record = s3_record()
    mutate(record)
    with pytest.raises(EventParseError, match=match):
        parse_restore_message(s3_message(record))


def test_malformed_non_restore_record_is_only_ignored():
    parsed = parse_restore_message(s3_message({"eventName": "ObjectCreated:Put"}, {"s3": {}}))
    assert parsed.events == []
    assert len(parsed.ignored) == 2


def test_unrecognised_object_is_ignored_not_raised():
    parsed = parse_restore_message('{"hello": "world"}')
    assert parsed.events == [] and "unrecognised" in parsed.ignored[0]


def test_event_parse_error_is_a_value_error():
    assert issubclass(EventParseError, ValueError)


# -- run_key -------------------------------------------------------------------------------------


def test_run_key_is_bounded_for_long_keys():
    long_key = "deep/" * 300 + "file.txt"  # 1508 characters, beyond the 1000 limit
    event = parse_restore_message(s3_message(s3_record(key=long_key))).events[0]
    assert event.key == long_key
    assert len(event.run_key) <= MAX_RUN_KEY_LENGTH
    assert event.run_key.startswith(f"{BUCKET}/sha256:") and event.run_key.endswith(f"/{VERSION}/{EVENT_TIME}")
    other = parse_restore_message(s3_message(s3_record(key=long_key + "x"))).events[0]
    assert other.run_key != event.run_key


# -- moto round trip -------------------------------------------------------------------------------


def test_moto_sqs_restore_notification_round_trip(aws_credentials):
    """moto sends s3:TestEvent on configuration, ObjectRestore:Post on restore_object and
    ObjectRestore:Completed when the key's restore status is next read (HeadObject/GetObject)."""
    key = "archive/lab/my file/name+1 é.txt"
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue_url = sqs.create_queue(QueueName="restore-events")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_notification_configuration(
            Bucket=BUCKET,
            NotificationConfiguration={"QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectRestore:*"]}]},
        )
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"payload", StorageClass="GLACIER")
        s3.restore_object(Bucket=BUCKET, Key=key, RestoreRequest={"Days": 1})
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"payload"

        bodies = []
        while True:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not messages:
                break
            bodies += [m["Body"] for m in messages]
            sqs.delete_message_batch(
                QueueUrl=queue_url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            )

    parsed = [parse_restore_message(body) for body in bodies]
    test_events = [p for p in parsed if any("s3:TestEvent" in reason for reason in p.ignored)]
    assert len(test_events) == 1 and test_events[0].events == []
    events = [e for p in parsed for e in p.events]
    assert {e.kind for e in events} == {"initiated", "completed"}
    completed = next(e for e in events if e.kind == "completed")
    assert (completed.bucket, completed.key, completed.source) == (BUCKET, key, "s3")
    assert json.loads(next(b for b in bodies if "ObjectRestore:Completed" in b))["Records"][0]["s3"]["object"]["key"] != key


# -- x-amz-restore header ------------------------------------------------------------------------


def test_restore_header_ongoing():
    assert parse_restore_header('ongoing-request="true"') == RestoreStatus(ongoing=True, expiry=None)


def test_restore_header_done_with_expiry():
    status = parse_restore_header('ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"')
    assert status == RestoreStatus(ongoing=False, expiry=datetime(2012, 12, 21, tzinfo=timezone.utc))
    assert status.expiry.tzinfo is not None


@pytest.mark.parametrize("value", [None, "", "   "])
def test_restore_header_absent(value):
    assert parse_restore_header(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        'ongoing-request="maybe"',
        'expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"',
        'ongoing-request="false", expiry-date="not a date"',
        'ongoing-request="true",',
        'ongoing-request="true" ongoing-request="true"',
        'ongoing-request="true", ongoing-request="false"',
        "ongoing-request=true",
    ],
)
def test_restore_header_malformed(value):
    with pytest.raises(EventParseError):
        parse_restore_header(value)


def test_restore_header_ignores_unknown_pairs():
    status = parse_restore_header('ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT", x-extra="1"')
    assert status is not None and status.ongoing is False


# -- properties ----------------------------------------------------------------------------------

INTERESTING_KEYS = [
    "Records", "detail", "detail-type", "source", "time", "s3", "bucket", "object", "key", "name",
    "eventName", "eventTime", "versionId", "version-id", "glacierEventData", "restoreEventData",
    "lifecycleRestorationExpiryTime", "lifecycleRestoreStorageClass", "restore-expiry-time",
    "source-storage-class", "Type", "Message", "Event",
]  # fmt: skip
INTERESTING_STRINGS = [
    "ObjectRestore:Completed", "ObjectRestore:Post", "ObjectRestore:Delete", "ObjectCreated:Put",
    "Object Restore Completed", "Object Restore Initiated", "Object Restore Expired", "aws.s3",
    "Notification", "s3:TestEvent", "2024-01-01T00:00:00Z", "%FF", "a+b%2Fc", "",
]  # fmt: skip

json_leaves = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20) | st.sampled_from(INTERESTING_STRINGS)
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(INTERESTING_KEYS) | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


# Structures that reach deep into the restore-record paths: every field is usually well formed
# (so that events really come out) and sometimes an arbitrary JSON value or absent.
def mostly(good, bad=json_values):
    """``good`` nine times out of ten, else ``bad``."""
    return st.integers(0, 9).flatmap(lambda n: bad if n == 0 else good)


keys_text = st.text(min_size=1, max_size=30) | st.sampled_from(["a+b%2Fc", "%FF", "x%2", "caf%C3%A9", "%ED%A0%80", "\ud800"])
times_text = st.sampled_from(
    ["2024-01-01T00:00:00Z", "2024-01-01T00:00:00.123456789Z", "1970-01-01", "9999-12-31T23:59:59-23:59"]
) | st.text(max_size=30)


def optional_fields(**fields):
    return st.fixed_dictionaries({}, optional=fields)


shaped_records = st.fixed_dictionaries(
    {
        "eventName": mostly(st.sampled_from(INTERESTING_STRINGS[:4])),
        "eventTime": mostly(times_text),
        "s3": mostly(
            st.fixed_dictionaries(
                {
                    "bucket": mostly(st.fixed_dictionaries({"name": mostly(st.text(min_size=1, max_size=10))})),
                    "object": mostly(
                        st.fixed_dictionaries({"key": mostly(keys_text)}, optional={"versionId": mostly(st.text(max_size=300))})
                    ),
                }
            )
        ),
    },
    optional={
        "glacierEventData": mostly(
            optional_fields(
                restoreEventData=mostly(
                    optional_fields(
                        lifecycleRestorationExpiryTime=mostly(times_text),
                        lifecycleRestoreStorageClass=mostly(st.sampled_from(["GLACIER", "DEEP_ARCHIVE"])),
                    )
                )
            )
        ),
    },
)
shaped_eventbridge = st.fixed_dictionaries(
    {
        "detail-type": mostly(st.sampled_from(INTERESTING_STRINGS[4:7])),
        "source": mostly(st.just("aws.s3")),
        "time": mostly(times_text | st.text(min_size=900, max_size=1200)),
        "detail": mostly(
            st.fixed_dictionaries(
                {
                    "bucket": mostly(st.fixed_dictionaries({"name": mostly(st.text(min_size=1, max_size=10))})),
                    "object": mostly(
                        st.fixed_dictionaries({"key": mostly(keys_text)}, optional={"version-id": mostly(st.text(max_size=300))})
                    ),
                },
                optional={"restore-expiry-time": mostly(times_text), "source-storage-class": json_values},
            )
        ),
    },
)
shaped_messages = (
    st.builds(lambda records: {"Records": records}, st.lists(shaped_records, max_size=3) | json_values) | shaped_eventbridge | json_values
)
sns_wrapped = shaped_messages.map(lambda m: {"Type": "Notification", "Message": json.dumps(m)})


def _check(body) -> None:
    try:
        parsed = parse_restore_message(body)
    except EventParseError as exc:
        assert str(exc)
        return
    assert isinstance(parsed, ParsedMessage)
    assert all(isinstance(reason, str) and reason for reason in parsed.ignored)
    for event in parsed.events:
        assert event.kind in ("completed", "initiated", "expired")
        assert event.source in ("s3", "eventbridge")
        assert isinstance(event.bucket, str) and event.bucket
        assert isinstance(event.key, str) and event.key
        assert isinstance(event.event_time, str) and event.event_time
        assert event.version_id is None or isinstance(event.version_id, str)
        assert event.expiry is None or event.expiry.utcoffset().total_seconds() == 0
        assert len(event.run_key) <= MAX_RUN_KEY_LENGTH


@settings(max_examples=500, deadline=None)
@given(st.text() | st.binary())
def test_parse_restore_message_on_arbitrary_input(body):
    _check(body)


@settings(max_examples=500, deadline=None)
@given(json_values | shaped_messages | sns_wrapped)
def test_parse_restore_message_on_arbitrary_json(structure):
    _check(json.dumps(structure))


@settings(max_examples=500, deadline=None)
@given(
    st.text()
    | st.builds(
        lambda a, b, c: f'ongoing-request="{a}"{b}expiry-date="{c}"',
        st.sampled_from(["true", "false", "TRUE"]) | st.text(max_size=5),
        st.sampled_from([", ", ",", " , ", " "]) | st.text(max_size=3),
        st.sampled_from(["Fri, 21 Dec 2012 00:00:00 GMT", "Mon, 01 Jan 0001 00:00:00 +2359"]) | st.text(max_size=30),
    )
)
def test_parse_restore_header_on_arbitrary_text(value):
    try:
        status = parse_restore_header(value)
    except EventParseError as exc:
        assert str(exc)
        return
    if status is not None:
        assert isinstance(status.ongoing, bool)
        assert status.expiry is None or status.expiry.utcoffset().total_seconds() == 0
