"""A scripted HTTP source on loopback: each path serves its bytes after a list of planned failures.

``source.add("f.bin", data, ["reset", "truncate"])`` makes the first GET of ``/f.bin`` reset
the connection mid-body, the second end the body early, and every later one serve it whole.
``forever="stall"`` repeats a failure on every attempt. Failures:

- ``reset``: status and the full ``Content-Length``, half the body, then a TCP reset (RST);
- ``truncate``: the full ``Content-Length``, half the body, then a clean close (FIN);
- ``stall``: the full ``Content-Length`` and a first slice of the body, then silence for
  ``stall_seconds`` (longer than the reader's timeout).

``injected[path]`` counts the failures served.
"""

from __future__ import annotations

import http.server
import socket
import struct
import threading
import time
from collections import Counter
from typing import Any

FAILURES = ("reset", "truncate", "stall")


class ScriptedSource:
    def __init__(self, stall_seconds: float = 2.0):
        self.files: dict[str, tuple[bytes, list[str], str | None]] = {}
        self.injected: Counter[str] = Counter()
        self.served: Counter[str] = Counter()
        self.stall_seconds = stall_seconds
        self.lock = threading.Lock()
        source = self

        class Handler(_Handler):
            owner = source

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="scripted-source", daemon=True)

    def __enter__(self) -> "ScriptedSource":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(self, name: str, data: bytes, failures: list[str] | None = None, forever: str | None = None) -> str:
        for f in [*(failures or []), *([forever] if forever else [])]:
            if f not in FAILURES:
                raise ValueError(f"unknown failure {f!r}")
        with self.lock:
            self.files["/" + name] = (data, list(failures or []), forever)
        return f"{self.url}/{name}"

    def _next(self, path: str) -> tuple[bytes, str | None] | None:
        with self.lock:
            if path not in self.files:
                return None
            data, plan, forever = self.files[path]
            failure = plan.pop(0) if plan else forever
            if failure:
                self.injected[path] += 1
            else:
                self.served[path] += 1
            return data, failure

    @property
    def total_injected(self) -> int:
        return sum(self.injected.values())


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: ScriptedSource

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        planned = self.owner._next(self.path)
        if planned is None:
            self.send_error(404)
            return
        data, failure = planned
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Type", "application/octet-stream")
        if failure:
            self.send_header("Connection", "close")
        self.end_headers()
        if failure is None:
            self.wfile.write(data)
            return
        half = data[: max(len(data) // 2, 1)] if data else b""
        self.close_connection = True
        if failure == "stall":
            self.wfile.write(half[:65536])
            self.wfile.flush()
            time.sleep(self.owner.stall_seconds)
            return
        self.wfile.write(half)
        self.wfile.flush()
        if failure == "reset":
            time.sleep(0.05)  # let the client read what was sent, then abort under it
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.wfile.close()
            self.connection.close()

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
