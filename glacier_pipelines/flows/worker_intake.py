"""Intake of deletion, restoration and availability requests: persisted, then acknowledged (or dead-lettered).

``flows/intake.py`` hands over the messages whose ``regards.request.content_type`` names one of
these types; storage requests stay on their own path.
"""

from __future__ import annotations

from typing import Any

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.catalog.worker_requests import WorkerRequestStore
from glacier_pipelines.core import transport as tp
from glacier_pipelines.core.worker_requests import ParsedWorkerRequest, is_worker_content_type, parse_worker_request
from glacier_pipelines.flows import settling


def is_worker_message(msg: tp.Message) -> bool:
    return is_worker_content_type(msg.headers.get(tp.HEADER_CONTENT_TYPE))


def parse(msg: tp.Message, allowed_tenants: tuple[str, ...] = ()) -> ParsedWorkerRequest:
    content_type = msg.headers.get(tp.HEADER_CONTENT_TYPE)  # None (no header) is reported as a bad content type
    parsed = parse_worker_request(content_type, msg.body, tp.envelope_from_headers(msg.headers))  # type: ignore[arg-type]
    if parsed.envelope and allowed_tenants and parsed.envelope.tenant not in allowed_tenants:
        parsed.errors.append(f"tenant: {parsed.envelope.tenant!r} is not one of the tenants this worker serves")
        parsed.request = parsed.envelope = None
    return parsed


def take(transport: tp.Transport, catalog: Catalog, messages: list[tp.Message], result: Any, allowed_tenants: tuple[str, ...]) -> None:
    """Persist a chunk in one transaction, then settle each message (``result`` is intake's ``IntakeResult``)."""
    parsed = [parse(msg, allowed_tenants) for msg in messages]
    items = []
    for msg, p in zip(messages, parsed):
        tenant = p.envelope.tenant if p.envelope else (p.tenant or "")
        request_id = p.envelope.requestId if p.envelope else (p.request_id or f"message:{msg.id}")
        items.append(
            {
                "tenant": tenant[:64],
                "request_id": request_id[:255],
                "kind": p.kind,
                "owner": p.owner,
                "session": p.session,
                "body": p.request.model_dump(exclude_none=True) if p.request is not None else p.body,
                "errors": p.errors,
            }
        )

    def refusal(i: int, outcome: str) -> str | None:
        if outcome == "invalid":
            return "; ".join(parsed[i].errors)
        if outcome == "conflict":
            return f"{tp.HEADER_REQUEST_ID}: {parsed[i].request_id!r} is already the id of a storage request of this tenant"
        return None

    settling.persist_then_settle(
        transport,
        messages,
        [p.request_id or str(m.id) for p, m in zip(parsed, messages)],
        record=lambda: WorkerRequestStore(catalog).record(items),
        refusal=refusal,
        result=result,
    )


def set_aside_reused_ids(transport: tp.Transport, catalog: Catalog, messages: list[tp.Message], result: Any) -> list[tp.Message]:
    """Storage requests whose (tenant, request id) a deletion, restoration or availability request already holds are
    dead-lettered unrecorded (the outbox keys answers by tenant and request id); returns the others."""
    wanted = {(m.headers.get(tp.HEADER_TENANT), m.headers.get(tp.HEADER_REQUEST_ID)) for m in messages}
    taken = WorkerRequestStore(catalog).taken_ids({(t_, r) for t_, r in wanted if isinstance(t_, str) and isinstance(r, str)})
    if not taken:
        return messages
    kept = []
    for msg in messages:
        key = (msg.headers.get(tp.HEADER_TENANT), msg.headers.get(tp.HEADER_REQUEST_ID))
        if key not in taken:
            kept.append(msg)
            continue
        reason = f"{tp.HEADER_REQUEST_ID}: {key[1]!r} is already the id of this tenant's {taken[key].lower()} request"
        result.received += 1
        result.invalid += 1
        result.invalid_reasons.append(f"{key[1]}: {reason}")
        transport.dead_letter(msg.id, reason)
    return kept
