"""A scriptable fault-injecting HTTP proxy in front of an S3 endpoint (moto in server mode), on loopback.

Every request is classified by S3 operation (``UploadPart``, ``CompleteMultipartUpload``,
``PutObject``, ``HeadObject``...). A ``Fault`` names an operation, how many matching
requests to let through first (``skip``: the k-th part is ``skip=k-1``) and how many times
to strike (``times``; ``None`` is every time). Actions:

- ``slowdown``: answer ``503 SlowDown`` without forwarding;
- ``error500``: answer ``500 InternalError`` without forwarding;
- ``reset``: read half the request body, then reset the TCP connection (RST, not FIN);
- ``delay``: forward, let the server finish, then hold the answer ``delay`` seconds (beyond
  the client's read timeout) before sending it: the server did the work, the client gave up;
- ``checksum``: forward, then replace ``x-amz-checksum-sha256`` (and ``-crc32``, which multipart
  objects carry) in the answer (S3 reports a checksum other than the one it stored).

``Fault.injected`` counts the strikes, ``FaultProxy.seen`` every operation that passed.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import http.server
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

ACTIONS = ("slowdown", "error500", "reset", "delay", "checksum")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection", "expect"}


@dataclass
class Fault:
    op: str
    action: str
    times: int | None = 1
    skip: int = 0
    delay: float = 0.0
    checksum: str | None = None  # for "checksum": what to report instead (default: the SHA-256 of b"")
    seen: int = 0
    injected: int = 0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}")

    def strikes(self) -> bool:
        """Called once per matching request (under the proxy's lock)."""
        self.seen += 1
        if self.seen <= self.skip or (self.times is not None and self.injected >= self.times):
            return False
        self.injected += 1
        return True


def operation(method: str, path: str, query: dict[str, list[str]], headers: Any) -> str:
    """The S3 operation of a path-style request."""
    parts = [p for p in path.split("/") if p]
    has_key = len(parts) > 1
    if method == "POST" and "uploads" in query:
        return "CreateMultipartUpload"
    if method == "POST" and "uploadId" in query:
        return "CompleteMultipartUpload"
    if method == "PUT" and "partNumber" in query:
        return "UploadPart"
    if method == "DELETE" and "uploadId" in query:
        return "AbortMultipartUpload"
    if method == "GET" and "uploads" in query:
        return "ListMultipartUploads"
    if method == "GET" and "uploadId" in query:
        return "ListParts"
    if method == "PUT" and has_key:
        return "CopyObject" if headers.get("x-amz-copy-source") else "PutObject"
    if method == "HEAD":
        return "HeadObject" if has_key else "HeadBucket"
    if method == "GET":
        return "GetObject" if has_key else "ListObjects"
    if method == "DELETE":
        return "DeleteObject" if has_key else "DeleteBucket"
    if method == "PUT":
        return "CreateBucket"
    return f"{method}?"


class FaultProxy:
    """``with FaultProxy(upstream) as proxy:`` then point the S3 client at ``proxy.url``."""

    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.faults: list[Fault] = []
        self.seen: Counter[str] = Counter()
        self.lock = threading.Lock()
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="s3-fault-proxy", daemon=True)

    def __enter__(self) -> "FaultProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def inject(self, op: str, action: str, **kw: Any) -> Fault:
        fault = Fault(op=op, action=action, **kw)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()

    def _decide(self, op: str) -> Fault | None:
        with self.lock:
            self.seen[op] += 1
            for fault in self.faults:
                if fault.op in (op, "*") and fault.strikes():
                    return fault
        return None

    @property
    def injected(self) -> int:
        return sum(f.injected for f in self.faults)


def _error_xml(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message>'
        f"<RequestId>fault-proxy</RequestId></Error>"
    ).encode()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and "Expect: 100-continue" answered as S3 does
    owner: FaultProxy
    _upstream: http.client.HTTPConnection | None = None

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._proxy()

    do_PUT = do_POST = do_HEAD = do_DELETE = do_GET

    def _body_length(self) -> int | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return None
        return int(self.headers.get("Content-Length") or 0)

    def _read_body(self) -> bytes:
        length = self._body_length()
        if length is not None:
            return self.rfile.read(length)
        chunks = []
        while True:  # HTTP chunked: forwarded de-chunked with a Content-Length
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _reset(self) -> None:
        """Abort the TCP connection with a RST, as a crashed or overloaded server does."""
        length = self._body_length()
        if length:
            self.rfile.read(max(length // 2, 1))  # mid-body
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.wfile.close()
        self.connection.close()
        self.close_connection = True

    def _answer(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes, head: bool = False) -> None:
        self.send_response_only(status, reason)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        if not head or not any(n.lower() == "content-length" for n, _ in headers):
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Content-Length", next(v for n, v in headers if n.lower() == "content-length"))
        self.end_headers()
        if not head:
            self.wfile.write(body)
        self.wfile.flush()

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        for attempt in range(2):  # a pooled upstream connection may have been closed meanwhile
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(*self.owner.upstream, timeout=60)
            try:
                self._upstream.request(self.command, self.path, body=body, headers=headers)
                resp = self._upstream.getresponse()
                data = resp.read()
                return resp.status, resp.reason, resp.getheaders(), data
            except (ConnectionError, http.client.HTTPException):
                self._upstream.close()
                self._upstream = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _proxy(self) -> None:
        parts = urlsplit(self.path)
        op = operation(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True), self.headers)
        fault = self.owner._decide(op)
        if fault is not None and fault.action == "reset":
            self._reset()
            return
        body = self._read_body()
        if fault is not None and fault.action == "slowdown":
            self._answer(
                503, "Slow Down", [("Content-Type", "application/xml")], _error_xml("SlowDown", "Please reduce your request rate.")
            )
            return
        if fault is not None and fault.action == "error500":
            self._answer(
                500,
                "Internal Server Error",
                [("Content-Type", "application/xml")],
                _error_xml("InternalError", "We encountered an internal error. Please try again."),
            )
            return
        status, reason, headers, data = self._forward(body)
        if fault is not None and fault.action == "delay":
            time.sleep(fault.delay)  # the server has done it; the client has given up waiting
        if fault is not None and fault.action == "checksum":
            other = fault.checksum or base64.b64encode(hashlib.sha256(b"").digest()).decode()
            lies = {"x-amz-checksum-sha256": other, "x-amz-checksum-crc32": "AAAAAQ==-1"}  # multipart objects carry CRC32 composites
            headers = [(n, lies.get(n.lower(), v)) for n, v in headers]
            if not any(n.lower() == "x-amz-checksum-sha256" for n, _ in headers):
                headers.append(("x-amz-checksum-sha256", other))
        try:
            self._answer(status, reason, headers, data, head=self.command == "HEAD")
        except OSError:
            self.close_connection = True  # the client went away (timed out)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        if self._upstream is not None:
            self._upstream.close()
