"""Persist a chunk of messages, then settle each one: the rule every request queue follows.

A message is acknowledged only after the catalog holds it, so a crash in between redelivers it and the
catalog recognises the duplicate; one the catalog refused is dead-lettered with its reason.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from glacier_pipelines.core import transport as tp


def persist_then_settle(
    transport: tp.Transport,
    messages: Sequence[tp.Message],
    labels: Sequence[str],
    record: Callable[[], list[str]],
    refusal: Callable[[int, str], str | None],
    result: Any,
) -> None:
    """``record()`` persists the chunk in one transaction and returns one outcome per message ("new", "duplicate",
    or a refusal); ``refusal(i, outcome)`` gives the dead-letter reason of message ``i``, or None to acknowledge it.
    ``labels`` name the messages in ``result.invalid_reasons``; ``result`` is intake's ``IntakeResult``."""
    try:
        outcomes = record()
    except Exception:
        for msg in messages:
            try:
                transport.release(msg.id)  # not persisted: deliver again later
            except tp.TransportError:
                break  # the broker redelivers unacknowledged messages by itself
        raise
    for i, (msg, label, outcome) in enumerate(zip(messages, labels, outcomes)):
        result.received += 1
        reason = refusal(i, outcome)
        if reason is not None:
            result.invalid += 1
            result.invalid_reasons.append(f"{label}: {reason}")
            transport.dead_letter(msg.id, reason)
            continue
        if outcome == "duplicate":
            result.duplicates += 1
        else:
            result.new += 1
        transport.ack(msg.id)
