"""Draining the SQS queue of restore events into the catalog."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from glacier_pipelines.core import events
from glacier_pipelines.flows.restore import RestoreSetup, record_event

log = logging.getLogger(__name__)


@dataclass
class EventsSeen:
    messages: int = 0
    events: int = 0
    unknown: int = 0
    ignored: int = 0
    unreadable: int = 0


def drain_events(setup: RestoreSetup, sqs: Any, queue_url: str, *, max_messages: int = 500, max_seconds: float = 20.0) -> EventsSeen:
    """Apply each message's restore events to the catalog, then delete the message.

    A message is deleted only after what it says is recorded, so a crash in between makes SQS
    deliver it again, which changes nothing. Unreadable messages and events about objects we
    do not know are logged and deleted: they are not requests, and keeping them would only
    make them come back forever.
    """
    seen = EventsSeen()
    deadline = time.monotonic() + max_seconds
    while seen.messages < max_messages and time.monotonic() < deadline:
        resp = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=60)
        batch = resp.get("Messages", [])
        if not batch:
            break
        for message in batch:
            seen.messages += 1
            try:
                parsed = events.parse_restore_message(message.get("Body", ""))
            except events.EventParseError as exc:
                log.warning("restore events: unreadable message %s deleted: %s", message.get("MessageId"), exc)
                seen.unreadable += 1
            else:
                seen.ignored += len(parsed.ignored)
                for event in parsed.events:
                    if record_event(setup, event):
                        seen.events += 1
                    else:
                        seen.unknown += 1
                        log.info("restore event for an object not in the catalog: s3://%s/%s", event.bucket, event.key)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return seen
