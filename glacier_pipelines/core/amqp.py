"""The AMQP transport (RabbitMQ) over pika: requests in, responses out, dead letters aside.

Same contract as the embedded spool: ``receive`` hands out unacknowledged deliveries, the
caller persists them and only then acknowledges; publishing uses publisher confirms, so a
response counts as sent only once the broker has taken responsibility for it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pika
import pika.exceptions

from glacier_pipelines.core.spool import Message
from glacier_pipelines.core.transport import TransportConfigError, TransportError

log = logging.getLogger(__name__)
_CONNECTION_ERRORS = (pika.exceptions.AMQPError, OSError)


def redact_amqp_url(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        user = f"{parts.username}:***@" if parts.username else ""
        return urlunsplit((parts.scheme, user + host, parts.path, "", ""))
    except ValueError:
        return "<unparseable AMQP URL>"


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


@dataclass(frozen=True)
class AmqpSettings:
    url: str
    request_queue: str = "glacier.storage.requests"
    response_exchange: str = ""
    response_routing_key: str = "glacier.storage.responses"
    dead_letter_queue: str = "glacier.storage.requests.dlq"
    prefetch: int = 200


class AmqpTransport:
    """One blocking connection; open lazily, closed by ``close`` (or ``with``)."""

    def __init__(self, settings: AmqpSettings):
        self.settings = settings
        self._connection: pika.BlockingConnection | None = None
        self._channel: Any = None
        self._consumer: Any = None
        self._deliveries: dict[str, int] = {}
        self._bodies: dict[str, tuple[dict[str, Any], bytes]] = {}

    # ---- connection -----------------------------------------------------------------------
    def __enter__(self) -> "AmqpTransport":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _open(self) -> Any:
        if self._channel is not None and self._channel.is_open:
            return self._channel
        self._deliveries.clear()  # delivery tags die with their channel
        self._bodies.clear()
        self._consumer = None
        try:
            if self._connection is None or self._connection.is_closed:
                params = pika.URLParameters(self.settings.url)
                params.connection_attempts = 2
                params.retry_delay = 0.5
                params.socket_timeout = 5
                params.blocked_connection_timeout = 30
                self._connection = pika.BlockingConnection(params)
            channel = self._connection.channel()
            channel.confirm_delivery()
            channel.basic_qos(prefetch_count=self.settings.prefetch)
            self._channel = channel
            for queue in {self.settings.request_queue, self.settings.dead_letter_queue}:
                self._ensure_queue(queue)
            if not self.settings.response_exchange:
                self._ensure_queue(self.settings.response_routing_key)
        except (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError) as exc:
            raise TransportConfigError(
                f"the AMQP broker at {redact_amqp_url(self.settings.url)} refused the login "
                f"(fix the user or password in GLACIER_AMQP_URL): {_first_line(exc)}"
            ) from None
        except pika.exceptions.ProbableAccessDeniedError as exc:
            raise TransportConfigError(
                f"the AMQP broker at {redact_amqp_url(self.settings.url)} refused the virtual host "
                f"(fix GLACIER_AMQP_URL): {_first_line(exc)}"
            ) from None
        except _CONNECTION_ERRORS as exc:
            raise TransportError(f"the AMQP broker at {redact_amqp_url(self.settings.url)} is unreachable: {_first_line(exc)}") from None
        return self._channel

    def check(self) -> None:
        """Connect now: a refused login raises TransportConfigError, an unreachable broker TransportError."""
        self._open()

    def _ensure_queue(self, name: str) -> None:
        """Accept a queue that exists with any arguments; declare it durable only if absent."""
        try:
            self._channel.queue_declare(queue=name, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 404:
                raise
            if self._connection is None:  # only _open calls this, once connected
                raise TransportError("the AMQP connection closed while declaring queues")
            self._channel = self._connection.channel()
            self._channel.confirm_delivery()
            self._channel.basic_qos(prefetch_count=self.settings.prefetch)
            self._channel.queue_declare(queue=name, durable=True)

    def close(self) -> None:
        try:
            if self._connection is not None and self._connection.is_open:
                self._connection.close()
        except _CONNECTION_ERRORS:
            pass
        self._connection = self._channel = self._consumer = None
        self._deliveries.clear()
        self._bodies.clear()

    # ---- requests -------------------------------------------------------------------------
    def publish_request(self, headers: dict[str, Any], body: bytes) -> None:
        self._publish("", self.settings.request_queue, headers, body)

    def receive(self, max_messages: int) -> list[Message]:
        """Up to ``max_messages`` unacknowledged deliveries; returns early when the queue is idle for 0.2 s.

        A consumer with prefetch (not one ``basic_get`` per message) keeps the broker ahead of
        us; what it delivered but we did not hand out is requeued when the channel closes.
        """
        channel = self._open()
        out: list[Message] = []
        try:
            if self._consumer is None:
                self._consumer = channel.consume(self.settings.request_queue, auto_ack=False, inactivity_timeout=0.2)
            while len(out) < max_messages:
                method, properties, body = next(self._consumer)
                if method is None:
                    break
                out.append(self._track(channel, method, properties, body))
        except _CONNECTION_ERRORS as exc:
            if out:
                log.warning("AMQP receive interrupted after %d message(s): %r", len(out), exc)
                return out  # those not acknowledged are redelivered by the broker
            raise TransportError(f"AMQP receive failed: {exc!r}") from None
        return out

    def _track(self, channel: Any, method: Any, properties: Any, body: bytes) -> Message:
        """Remember a delivery (to settle or dead-letter it later) and hand it out as a Message."""
        msg_id = f"{id(channel)}:{method.delivery_tag}"
        headers = dict(properties.headers or {})
        self._deliveries[msg_id] = method.delivery_tag
        self._bodies[msg_id] = (headers, body)
        return Message(id=msg_id, headers={k: _text(v) for k, v in headers.items()}, body=body)

    def receive_from(self, queue: str, max_messages: int) -> list[Message]:
        """Unacknowledged messages of another queue (``basic_get``; for low-volume queues such as restores)."""
        channel = self._open()
        self._ensure_queue(queue)
        channel = self._channel
        out: list[Message] = []
        try:
            while len(out) < max_messages:
                method, properties, body = channel.basic_get(queue, auto_ack=False)
                if method is None:
                    break
                out.append(self._track(channel, method, properties, body))
        except _CONNECTION_ERRORS as exc:
            if not out:
                raise TransportError(f"AMQP receive from {queue} failed: {exc!r}") from None
        return out

    def publish_to(self, queue: str, headers: dict[str, Any], body: bytes) -> None:
        self._open()
        self._ensure_queue(queue)
        self._publish("", queue, headers, body)

    def _settle(self, msg_id: str, action: str) -> None:
        tag = self._deliveries.pop(msg_id, None)
        self._bodies.pop(msg_id, None)
        if tag is None:
            raise TransportError(f"delivery {msg_id} belongs to a closed channel; the broker will redeliver it")
        try:
            if action == "ack":
                self._channel.basic_ack(tag)
            else:
                self._channel.basic_nack(tag, requeue=True)
        except _CONNECTION_ERRORS as exc:
            raise TransportError(f"AMQP {action} failed: {exc!r}; the broker will redeliver the message") from None

    def ack(self, msg_id: str) -> None:
        self._settle(msg_id, "ack")

    def release(self, msg_id: str) -> None:
        self._settle(msg_id, "nack")

    def dead_letter(self, msg_id: str, reason: str) -> None:
        """Publish the original message to the dead-letter queue with the reason (confirmed), then ack it."""
        headers, body = self._bodies.get(msg_id, ({}, b""))
        self._publish("", self.settings.dead_letter_queue, {**headers, "x-dead-letter-reason": reason[:4000]}, body)
        self.ack(msg_id)

    # ---- responses ------------------------------------------------------------------------
    def publish_response(self, headers: dict[str, Any], body: bytes) -> None:
        self._publish(self.settings.response_exchange, self.settings.response_routing_key, headers, body)

    def read_responses(self, max_messages: int) -> list[Message]:
        """Consume from the response queue (default exchange only), for operators and tests."""
        return self.read_queue(self.settings.response_routing_key, max_messages)

    def read_queue(self, queue: str, max_messages: int) -> list[Message]:
        channel = self._open()
        out: list[Message] = []
        try:
            while len(out) < max_messages:
                method, properties, body = channel.basic_get(queue, auto_ack=True)
                if method is None:
                    break
                out.append(
                    Message(id=str(method.delivery_tag), headers={k: _text(v) for k, v in (properties.headers or {}).items()}, body=body)
                )
        except _CONNECTION_ERRORS as exc:
            raise TransportError(f"AMQP read of {queue} failed: {exc!r}") from None
        return out

    def _publish(self, exchange: str, routing_key: str, headers: dict[str, Any], body: bytes) -> None:
        channel = self._open()
        props = pika.BasicProperties(
            headers=headers, delivery_mode=pika.DeliveryMode.Persistent, content_type="application/json", timestamp=int(time.time())
        )
        try:
            channel.basic_publish(exchange=exchange, routing_key=routing_key, body=body, properties=props, mandatory=True)
        except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
            raise TransportError(f"the broker refused the message for {exchange or '(default exchange)'}/{routing_key}: {exc!r}") from None
        except _CONNECTION_ERRORS as exc:
            raise TransportError(f"AMQP publish failed: {exc!r}") from None


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
