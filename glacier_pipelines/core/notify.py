"""Telling a requester that restored files are ready: one email per restore request.

The message holds pre-signed links, so it is never logged; only "sent to <address>" is.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    sender: str = "glacier-pipelines@localhost"
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 30.0


def ready_message(*, sender: str, to: str, restore_id: str, tenant: str, files: list[dict[str, Any]], note: str | None) -> EmailMessage:
    """``files``: dicts with name, url (download link), expires_at, estimated_cost_usd."""
    total = sum(f.get("estimated_cost_usd") or 0.0 for f in files)
    lines = [
        f"Your restore request {restore_id} (tenant {tenant}) is ready: {len(files)} file(s).",
        "",
    ]
    for f in files:
        lines += [
            f"- {f['name']}",
            f"  download: {f['url']}",
            f"  link valid until: {f['expires_at']:%Y-%m-%d %H:%M UTC}",
            f"  estimated cost: ${f.get('estimated_cost_usd') or 0.0:.4f}",
        ]
    lines += [
        "",
        f"Estimated cost of this restore: ${total:.4f} (retrieval, requests, temporary copy, transfer out).",
        "Checksums of the restored bytes were verified against the archive catalog before this message was sent.",
    ]
    if note:
        lines += ["", f"Your note: {note}"]
    msg = EmailMessage()
    msg["From"], msg["To"] = sender, to
    msg["Subject"] = f"[glacier-pipelines] restore {restore_id} ready ({len(files)} file(s))"
    msg.set_content("\n".join(lines))
    return msg


def send(settings: SmtpSettings, message: EmailMessage) -> None:
    with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as smtp:
        if settings.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.user:
            smtp.login(settings.user, settings.password or "")
        smtp.send_message(message)
