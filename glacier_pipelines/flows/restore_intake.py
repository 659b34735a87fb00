"""Restore requests arriving over AMQP (``GLACIER_RESTORE_REQUEST_QUEUE``): recorded, then acknowledged."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from glacier_pipelines.core import transport as tp
from glacier_pipelines.core.restores import RestoreRequestError, parse_restore_request
from glacier_pipelines.flows import restore as flow

log = logging.getLogger(__name__)


@dataclass
class RestoreIntake:
    accepted: int = 0
    invalid: list[str] = field(default_factory=list)


def drain_restore_requests(
    transport: Any, queue: str, setup: flow.RestoreSetup, *, max_days: int, max_messages: int = 200
) -> RestoreIntake:
    """Each message: a JSON restore request (tenant from the body or the ``regards.tenant`` header).

    Valid ones are recorded (their restores start on the next restore_job run) and then
    acknowledged; invalid ones go to the dead-letter queue with the reason.
    """
    seen = RestoreIntake()
    for message in transport.receive_from(queue, max_messages):
        try:
            data = json.loads(message.body)
            if not isinstance(data, dict):
                raise RestoreRequestError("body: must be a JSON object")
            if "tenant" not in data and message.headers.get(tp.HEADER_TENANT):
                data["tenant"] = message.headers[tp.HEADER_TENANT]
            request = parse_restore_request(data, max_days=max_days)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError and RestoreRequestError are ValueErrors
            reason = f"invalid restore request: {exc}"
            seen.invalid.append(reason)
            transport.dead_letter(message.id, reason)
            continue
        summary = flow.submit(setup, request)
        log.info("restore request %s recorded from AMQP (%d file(s))", summary["restoreId"], len(summary["files"]))
        transport.ack(message.id)
        seen.accepted += 1
    return seen
