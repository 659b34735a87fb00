"""A durable folder queue: the embedded request transport, needing no broker.

Each message is one JSON file. Publishing writes, fsyncs and renames into ``new/``;
receiving claims a message by renaming it into ``cur/`` (atomic, so several consumers never
take the same one); acknowledging deletes it. A consumer that dies leaves its messages in
``cur/``, and they return to ``new/`` after the visibility timeout: delivery is at least once,
as with AMQP, and the catalog makes redelivery harmless.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Message:
    id: str
    headers: dict[str, Any]
    body: bytes


def _encode(headers: dict[str, Any], body: bytes) -> bytes:
    record: dict[str, Any] = {"headers": headers}
    try:
        record["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        record["body_base64"] = base64.b64encode(body).decode("ascii")
    return json.dumps(record, ensure_ascii=False).encode("utf-8")


def _decode(data: bytes) -> tuple[dict[str, Any], bytes]:
    """Raises ValueError for anything that is not a spool record."""
    record = json.loads(data)
    if not isinstance(record, dict) or not isinstance(record.get("headers", {}), (dict, type(None))):
        raise ValueError("not a spool record")
    if isinstance(record.get("body"), str):
        body = record["body"].encode("utf-8")
    elif isinstance(record.get("body_base64", ""), str) and "body" not in record:
        body = base64.b64decode(record.get("body_base64", ""), validate=True)
    else:
        raise ValueError("the body is neither text nor base64")
    return dict(record.get("headers") or {}), body


class SpoolQueue:
    def __init__(self, root: Path, visibility_timeout: float = 600.0):
        self.root = Path(root)
        self.visibility_timeout = visibility_timeout
        for sub in ("new", "cur", "dead", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def publish(self, headers: dict[str, Any], body: bytes) -> str:
        # Names sort by publication time so consumers see messages in order.
        msg_id = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.json"
        tmp = self.root / "tmp" / msg_id
        with open(tmp, "wb") as f:
            f.write(_encode(headers, body))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.root / "new" / msg_id)
        return msg_id

    def _requeue_expired(self) -> None:
        cutoff = time.time() - self.visibility_timeout
        for path in (self.root / "cur").iterdir():
            try:
                if path.stat().st_mtime < cutoff:
                    os.replace(path, self.root / "new" / path.name)
            except FileNotFoundError:
                continue

    def receive(self, max_messages: int) -> list[Message]:
        """Claim up to ``max_messages`` messages, oldest first."""
        self._requeue_expired()
        out: list[Message] = []
        for name in sorted(os.listdir(self.root / "new")):
            if len(out) >= max_messages:
                break
            claimed = self.root / "cur" / name
            try:
                os.replace(self.root / "new" / name, claimed)
                os.utime(claimed)  # the visibility timeout counts from the claim
            except FileNotFoundError:
                continue  # another consumer took it
            try:
                data = claimed.read_bytes()
            except FileNotFoundError:
                continue  # requeued and taken by another consumer in between
            try:
                headers, body = _decode(data)
            except (ValueError, KeyError, TypeError) as exc:
                self.dead_letter(name, f"unreadable spool file: {exc}")
                continue
            out.append(Message(id=name, headers=headers, body=body))
        return out

    def ack(self, msg_id: str) -> None:
        (self.root / "cur" / msg_id).unlink(missing_ok=True)

    def release(self, msg_id: str) -> None:
        """Give a claimed message back (it was not persisted), so it is delivered again."""
        try:
            os.replace(self.root / "cur" / msg_id, self.root / "new" / msg_id)
        except FileNotFoundError:
            pass

    def dead_letter(self, msg_id: str, reason: str) -> None:
        """Keep the original message aside with the reason; it is never redelivered."""
        src = self.root / "cur" / msg_id
        try:
            headers, body = _decode(src.read_bytes())
        except (OSError, ValueError, KeyError, TypeError):
            headers, body = {}, src.read_bytes() if src.exists() else b""
        headers["x-dead-letter-reason"] = reason
        tmp = self.root / "tmp" / msg_id
        tmp.write_bytes(_encode(headers, body))
        os.replace(tmp, self.root / "dead" / msg_id)
        src.unlink(missing_ok=True)

    def count(self, sub: str = "new") -> int:
        return len(os.listdir(self.root / sub))
