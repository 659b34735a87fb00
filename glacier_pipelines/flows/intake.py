"""Intake: persist received requests in the catalog, then acknowledge; publish the response outbox."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.core import transport as tp
from glacier_pipelines.core.requests import ParsedRequest, parse_request
from glacier_pipelines.core.worker_requests import CONTENT_TYPES
from glacier_pipelines.flows import settling, worker_intake

log = logging.getLogger(__name__)


@dataclass
class IntakeResult:
    received: int = 0
    new: int = 0
    duplicates: int = 0
    invalid: int = 0
    invalid_reasons: list[str] = field(default_factory=list)
    transport_error: str | None = None

    def merge(self, other: "IntakeResult") -> None:
        self.received += other.received
        self.new += other.new
        self.duplicates += other.duplicates
        self.invalid += other.invalid
        self.invalid_reasons.extend(other.invalid_reasons)


def drain_requests(
    transport: tp.Transport,
    catalog: Catalog,
    *,
    max_messages: int = 1000,
    max_seconds: float = 20.0,
    allowed_tenants: tuple[str, ...] = (),
    chunk: int = 100,
) -> IntakeResult:
    """Move up to ``max_messages`` requests from the transport into the catalog (bounded in time too).

    Each message is persisted before it is acknowledged, so a crash in between causes a
    redelivery, which the catalog recognises as a duplicate. Invalid messages are recorded
    as ``INVALID_CONTENT`` (with a response) and dead-lettered with the reason.
    """
    result = IntakeResult()
    deadline = time.monotonic() + max_seconds
    try:
        while result.received < max_messages and time.monotonic() < deadline:
            messages = transport.receive(min(chunk, max_messages - result.received))
            if not messages:
                break
            _take(transport, catalog, messages, result, allowed_tenants)
    except tp.TransportError as exc:
        # Whatever was persisted but not acknowledged comes back and is recognised as a duplicate.
        result.transport_error = str(exc)
        log.warning("intake stopped: %s", exc)
    if result.invalid:
        log.warning("intake: %d invalid request(s) recorded as INVALID_CONTENT", result.invalid)
    return result


def _parse(msg: tp.Message, allowed_tenants: tuple[str, ...]) -> ParsedRequest:
    parsed = parse_request(msg.body, tp.envelope_from_headers(msg.headers))
    content_type = msg.headers.get(tp.HEADER_CONTENT_TYPE) or tp.DEFAULT_CONTENT_TYPE
    if content_type != tp.DEFAULT_CONTENT_TYPE:
        parsed.errors.append(f"{tp.HEADER_CONTENT_TYPE}: this worker handles {', '.join(map(repr, CONTENT_TYPES))}, not {content_type!r}")
    if parsed.envelope and allowed_tenants and parsed.envelope.tenant not in allowed_tenants:
        parsed.errors.append(f"tenant: {parsed.envelope.tenant!r} is not one of the tenants this worker serves")
    if parsed.errors:
        parsed.request = parsed.envelope = None
    return parsed


def _take(
    transport: tp.Transport, catalog: Catalog, messages: list[tp.Message], result: IntakeResult, allowed_tenants: tuple[str, ...]
) -> None:
    """Persist a chunk of messages in one transaction, then settle each: acknowledge, or dead-letter if invalid."""
    others = [m for m in messages if worker_intake.is_worker_message(m)]  # deletion, restoration, availability
    if others:
        worker_intake.take(transport, catalog, others, result, allowed_tenants)
        messages = [m for m in messages if not worker_intake.is_worker_message(m)]
    messages = worker_intake.set_aside_reused_ids(transport, catalog, messages, result)
    parsed = [_parse(msg, allowed_tenants) for msg in messages]
    settling.persist_then_settle(
        transport,
        messages,
        [p.request_id or str(m.id) for p, m in zip(parsed, messages)],
        record=lambda: catalog.record_requests([(p, f"message:{m.id}") for p, m in zip(parsed, messages)]),
        refusal=lambda i, outcome: "; ".join(parsed[i].errors) if outcome == "invalid" else None,
        result=result,
    )


def publish_responses(transport: tp.Transport, catalog: Catalog, *, worker_id: str, limit: int = 1000) -> int:
    """Publish recorded responses not yet sent; each is marked once the transport accepted it."""
    sent = 0
    for response in catalog.unpublished_responses(limit):
        headers = {
            tp.HEADER_TENANT: response["tenant"],
            tp.HEADER_REQUEST_ID: response["request_id"],
            tp.HEADER_WORKER_ID: worker_id,
        }
        try:
            transport.publish_response(headers, json.dumps(response["body"]).encode("utf-8"))
        except tp.TransportError as exc:
            log.warning("responses: %d published, the rest wait for the next attempt: %s", sent, exc)
            break
        catalog.mark_published([response["id"]])
        sent += 1
    return sent
