"""Request transports: where storage requests arrive and where responses go.

The wire shape mirrors AMQP (headers plus a JSON body) so every transport shares the same
intake code. ``embedded`` (the default) is a pair of durable spool folders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol, Self

from glacier_pipelines.core.spool import Message, SpoolQueue

__all__ = ["Message", "EmbeddedTransport", "Transport", "TransportConfigError", "TransportError"]

HEADER_TENANT = "regards.tenant"
HEADER_REQUEST_ID = "regards.request.id"
HEADER_OWNER = "regards.request.owner"
HEADER_SESSION = "regards.request.session"
HEADER_CONTENT_TYPE = "regards.request.content_type"
HEADER_WORKER_ID = "regards.worker_id"
DEFAULT_CONTENT_TYPE = "s3-glacier-storage-worker"
ENVELOPE_HEADERS = {"tenant": HEADER_TENANT, "requestId": HEADER_REQUEST_ID, "owner": HEADER_OWNER, "session": HEADER_SESSION}


class TransportError(Exception):
    """The transport (broker, folder) could not do what was asked; nothing was lost by it.

    A transient fault (the broker is down or unreachable): the work stays queued for a later pass.
    """


class TransportConfigError(TransportError, ValueError):
    """The transport refuses the configuration itself (credentials, virtual host, spool folder): retrying cannot help.

    Also a ValueError, so the console script reports it as a configuration fault (exit status 2).
    """


class Transport(Protocol):
    def check(self) -> None: ...
    def publish_request(self, headers: dict[str, Any], body: bytes) -> None: ...
    def receive(self, max_messages: int) -> list[Message]: ...
    def ack(self, msg_id: str) -> None: ...
    def release(self, msg_id: str) -> None: ...
    def dead_letter(self, msg_id: str, reason: str) -> None: ...
    def publish_response(self, headers: dict[str, Any], body: bytes) -> None: ...
    def read_responses(self, max_messages: int) -> list[Message]: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> None: ...


class EmbeddedTransport:
    """Requests and responses as spool folders under one root."""

    def __init__(self, root: Path):
        self.requests = SpoolQueue(Path(root) / "requests")
        self.responses = SpoolQueue(Path(root) / "responses")

    def check(self) -> None:
        """Nothing to reach: the spool folders were created (or refused with an OSError) by the constructor."""

    def publish_request(self, headers: dict[str, Any], body: bytes) -> None:
        self.requests.publish(headers, body)

    def receive(self, max_messages: int) -> list[Message]:
        return self.requests.receive(max_messages)

    def ack(self, msg_id: str) -> None:
        self.requests.ack(msg_id)

    def release(self, msg_id: str) -> None:
        self.requests.release(msg_id)

    def dead_letter(self, msg_id: str, reason: str) -> None:
        self.requests.dead_letter(msg_id, reason)

    def publish_response(self, headers: dict[str, Any], body: bytes) -> None:
        self.responses.publish(headers, body)

    def close(self) -> None:
        pass

    def __enter__(self) -> "EmbeddedTransport":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def read_responses(self, max_messages: int) -> list[Message]:
        """Consume responses (for operators and tests)."""
        msgs = self.responses.receive(max_messages)
        for m in msgs:
            self.responses.ack(m.id)
        return msgs


def submission_to_message(obj: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """A ``submit`` line (envelope fields at the top level) as headers plus body."""
    headers = {header: obj[field] for field, header in ENVELOPE_HEADERS.items() if obj.get(field) is not None}
    headers.setdefault(HEADER_CONTENT_TYPE, DEFAULT_CONTENT_TYPE)
    body = {k: v for k, v in obj.items() if k not in ENVELOPE_HEADERS}
    return headers, json.dumps(body).encode("utf-8")


def envelope_from_headers(headers: dict[str, Any]) -> dict[str, Any]:
    return {field: headers.get(header) for field, header in ENVELOPE_HEADERS.items()}
