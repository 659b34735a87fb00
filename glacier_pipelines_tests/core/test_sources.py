"""Tests for glacier_pipelines.core.sources: policy checks, streaming and error categories."""

from __future__ import annotations

import io
import ipaddress
import os
import pickle
import socket
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import quote

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from glacier_pipelines.core.sources import (
    SourceError,
    SourceNotFound,
    SourcePolicy,
    SourceRefused,
    SourceUnavailable,
    check_source_url,
    open_source,
    redact_url,
)

PAYLOAD = bytes(range(256)) * 1200  # 307200 bytes: several chunks
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


def read_all(url: str, policy: SourcePolicy, chunk_size: int = 1 << 16) -> tuple[bytes, int | None]:
    with open_source(url, policy) as stream:
        chunks = list(stream.chunks(chunk_size))
        assert all(0 < len(c) <= chunk_size for c in chunks)
        return b"".join(chunks), stream.size


# --------------------------------------------------------------------------- HTTP server


class _Handler(BaseHTTPRequestHandler):
    release: threading.Event  # set at teardown so stalled handlers end promptly
    hits: list[str]

    def log_message(self, *args: object) -> None:
        pass

    def _head(self, code: int, length: int | None = None, **headers: str) -> None:
        self.send_response(code)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()

    def do_GET(self) -> None:  # noqa: C901 - a route table
        self.hits.append(self.path)
        path = self.path.split("?", 1)[0]
        if path == "/file.bin":
            self._head(200, len(PAYLOAD))
            self.wfile.write(PAYLOAD)
        elif path == "/no-length":
            self._head(200)
            self.wfile.write(b"streamed until close")
        elif path == "/headers":
            body = f"{self.headers['Accept-Encoding']}|{self.headers['User-Agent']}".encode()
            self._head(200, len(body))
            self.wfile.write(body)
        elif path in ("/missing", "/gone", "/error", "/busy", "/forbidden"):
            code = {"/missing": 404, "/gone": 410, "/error": 500, "/busy": 429, "/forbidden": 403}[path]
            self._head(code, 0)
        elif path.startswith("/redirect"):
            target = {
                "/redirect": "/file.bin",
                "/redirect-metadata": "http://169.254.169.254/latest/meta-data",
                "/redirect-file": "file:///etc/passwd",
                "/redirect-loop": "/redirect-loop",
            }[path]
            self._head(302, 0, Location=target)
        elif path == "/slow-headers":
            self.release.wait(2.0)
        elif path == "/slow-body":
            self._head(200, 100)
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            self.release.wait(2.0)
        elif path == "/truncated":
            self._head(200, 1000)
            self.wfile.write(b"y" * 10)
        elif path == "/reset":
            self._head(200, 100_000)
            self.wfile.write(b"z" * 1000)
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()  # linger 0 => RST instead of FIN
        else:
            self._head(400, 0)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, list[str]]]:
    release, hits = threading.Event(), []
    handler = type("Handler", (_Handler,), {"release": release, "hits": hits})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    release.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def base(server: tuple[str, list[str]]) -> str:
    return server[0]


@pytest.fixture
def web() -> SourcePolicy:
    return SourcePolicy(allowed_networks=LOOPBACK, connect_timeout=2.0, read_timeout=0.5)


def test_http_file_streams_bytes_and_size(base: str, web: SourcePolicy) -> None:
    data, size = read_all(f"{base}/file.bin", web)
    assert data == PAYLOAD
    assert size == len(PAYLOAD)


def test_http_without_content_length_has_unknown_size(base: str, web: SourcePolicy) -> None:
    assert read_all(f"{base}/no-length", web) == (b"streamed until close", None)


def test_http_asks_for_identity_encoding_and_sends_user_agent(base: str) -> None:
    policy = SourcePolicy(allowed_networks=LOOPBACK, user_agent="archiver/1.0")
    assert read_all(f"{base}/headers", policy)[0] == b"identity|archiver/1.0"


@pytest.mark.parametrize(
    ("path", "error", "retryable", "text"),
    [
        ("/missing", SourceNotFound, False, "HTTP 404"),
        ("/gone", SourceNotFound, False, "HTTP 410"),
        ("/error", SourceUnavailable, True, "HTTP 500"),
        ("/busy", SourceUnavailable, True, "HTTP 429"),
        ("/forbidden", SourceRefused, False, "HTTP 403"),
    ],
)
def test_http_status_codes_are_categorised(
    base: str, web: SourcePolicy, path: str, error: type[SourceError], retryable: bool, text: str
) -> None:
    with pytest.raises(error) as info:
        read_all(base + path, web)
    assert type(info.value) is error
    assert info.value.retryable is retryable
    assert text in info.value.reason


def test_redirect_is_followed(base: str, web: SourcePolicy) -> None:
    assert read_all(f"{base}/redirect", web) == (PAYLOAD, len(PAYLOAD))


def test_redirect_to_metadata_address_is_refused(base: str, web: SourcePolicy) -> None:
    with pytest.raises(SourceRefused) as info:
        read_all(f"{base}/redirect-metadata", web)
    assert "169.254.169.254" in info.value.reason
    assert "link-local" in info.value.reason


def test_redirect_to_file_scheme_is_refused(base: str) -> None:
    policy = SourcePolicy(allowed_networks=LOOPBACK, file_roots=(Path("/"),))  # even when file:// is allowed
    with pytest.raises(SourceRefused, match="redirects may only lead to http"):
        read_all(f"{base}/redirect-file", policy)


def test_redirect_loop_stops_after_max_redirects(server: tuple[str, list[str]]) -> None:
    base, hits = server
    before = len(hits)
    with pytest.raises(SourceRefused, match="too many redirects"):
        read_all(f"{base}/redirect-loop", SourcePolicy(allowed_networks=LOOPBACK, max_redirects=3))
    assert hits[before:] == ["/redirect-loop"] * 4


def test_stalled_server_times_out_quickly(base: str, web: SourcePolicy) -> None:
    start = time.monotonic()
    with pytest.raises(SourceUnavailable) as info:
        read_all(f"{base}/slow-headers", web)
    assert time.monotonic() - start < 1.5
    assert "timed out" in info.value.reason
    assert info.value.retryable


def test_stall_mid_body_times_out(base: str, web: SourcePolicy) -> None:
    start = time.monotonic()
    with pytest.raises(SourceUnavailable, match="timed out"):
        read_all(f"{base}/slow-body", web)
    assert time.monotonic() - start < 1.5


def test_truncated_body_is_detected(base: str, web: SourcePolicy) -> None:
    with open_source(f"{base}/truncated", web) as stream:
        assert stream.size == 1000
        with pytest.raises(SourceUnavailable) as info:
            b"".join(stream.chunks())
    assert "truncated: got" in info.value.reason
    assert "of 1000 bytes" in info.value.reason
    assert info.value.retryable


def test_connection_reset_mid_body(base: str, web: SourcePolicy) -> None:
    with pytest.raises(SourceUnavailable) as info:
        read_all(f"{base}/reset", web, chunk_size=256)
    assert info.value.retryable


def test_loopback_refused_without_allowed_networks(server: tuple[str, list[str]]) -> None:
    base, hits = server
    before = len(hits)
    with pytest.raises(SourceRefused, match="loopback"):
        read_all(f"{base}/file.bin", SourcePolicy())
    assert len(hits) == before  # refused before connecting


def test_credentials_and_signature_are_redacted(base: str, web: SourcePolicy) -> None:
    url = base.replace("http://", "http://alice:hunter2@") + "/missing?X-Amz-Signature=topsecret"
    with pytest.raises(SourceNotFound) as info:
        read_all(url, web)
    for secret in ("alice", "hunter2", "topsecret"):
        assert secret not in str(info.value)
    assert info.value.url == f"{base}/missing"


def test_stream_can_be_iterated_only_once(base: str, web: SourcePolicy) -> None:
    with open_source(f"{base}/file.bin", web) as stream:
        assert b"".join(stream.chunks()) == PAYLOAD
        with pytest.raises(SourceError, match="only once"):
            stream.chunks()


# --------------------------------------------------------------------------- address policy


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://127.0.0.1/", "loopback"),
        ("http://2130706433/", "loopback"),  # decimal form of 127.0.0.1
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),  # IPv4-mapped IPv6
        ("https://10.1.2.3/", "private"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[fe80::1]/", "link-local"),
    ],
)
def test_non_public_addresses_are_refused(url: str, label: str) -> None:
    with pytest.raises(SourceRefused) as info:
        check_source_url(url, SourcePolicy())
    assert label in info.value.reason
    assert not info.value.retryable


def test_metadata_refusal_explains_how_to_allow() -> None:
    with pytest.raises(SourceRefused) as info:
        check_source_url("http://169.254.169.254/latest/meta-data", SourcePolicy())
    assert "allowed_networks" in info.value.reason
    assert "GLACIER_SOURCE_ALLOWED_NETWORKS" in info.value.reason


def test_allowed_networks_lift_the_refusal() -> None:
    policy = SourcePolicy.from_strings(networks="169.254.0.0/16,::ffff:0:0/96")
    check_source_url("http://169.254.169.254/latest/meta-data", policy)
    check_source_url("http://[::ffff:169.254.169.254]/", policy)
    check_source_url("http://[::ffff:169.254.169.254]/", SourcePolicy(allowed_networks=("169.254.0.0/16",)))
    check_source_url("http://93.184.216.34/file", SourcePolicy())  # public literal: no DNS needed


def test_any_private_resolved_address_is_refused() -> None:
    answers = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 80)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 80)),
    ]
    with mock.patch.object(socket, "getaddrinfo", return_value=answers):
        with pytest.raises(SourceRefused, match="10.0.0.7"):
            check_source_url("https://mixed.example/x", SourcePolicy())


def test_unresolvable_host_is_not_found() -> None:
    error = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    with mock.patch.object(socket, "getaddrinfo", side_effect=error):
        with pytest.raises(SourceNotFound, match="does not resolve"):
            check_source_url("https://nowhere.invalid/x", SourcePolicy())


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file",
        "javascript:alert(1)",
        "data:text/plain,hello",
        "",
        "   ",
        "relative/path.txt",
        "http://",
        "http://example.com:99999/",
        "http://exa\nmple.com/",
        "http://example.com/\x00",
        "http://[::1/",
        "http://b\u00fccher.example/",  # non-ASCII host: must be given in punycode
        "https://example.com/" + "a" * 5000,
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(SourceRefused):
        check_source_url(url, SourcePolicy())


def test_credentials_redacted_in_refusal() -> None:
    with pytest.raises(SourceRefused) as info:
        check_source_url("http://alice:s3cr3t@169.254.169.254/?sig=zzz", SourcePolicy())
    assert "s3cr3t" not in str(info.value) and "zzz" not in str(info.value)
    assert info.value.url == "http://169.254.169.254/"


def test_redact_url() -> None:
    assert redact_url("https://u:p@host:8443/a/b?X-Amz-Signature=abc#frag") == "https://host:8443/a/b"
    assert redact_url("s3://bucket/dir/key") == "s3://bucket/dir/key"
    assert redact_url("file:///srv/data/a%20b.txt") == "file:///srv/data/a%20b.txt"
    assert redact_url("file:a.txt") == "file:a.txt"  # odd URLs are not reshaped
    assert redact_url("http://[::1") == "<unparseable URL>"
    assert "\n" not in redact_url("http://host/a\nb")


def test_source_error_pickles() -> None:
    error = pickle.loads(pickle.dumps(SourceUnavailable("http://u:p@h/x?q=1", "boom")))
    assert (type(error), error.url, error.reason, error.retryable) == (SourceUnavailable, "http://h/x", "boom", True)


# --------------------------------------------------------------------------- file://


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "root" / "sub").mkdir(parents=True)
    (tmp_path / "root" / "a file.txt").write_bytes(b"inside")
    (tmp_path / "outside.txt").write_bytes(b"outside")
    return tmp_path / "root"


def file_url(path: Path | str) -> str:
    return "file://" + quote(str(path))


def test_file_inside_root(root: Path) -> None:
    policy = SourcePolicy(file_roots=(root,))
    assert read_all((root / "a file.txt").as_uri(), policy) == (b"inside", 6)
    assert read_all("file://localhost" + quote(str(root / "a file.txt")), policy)[0] == b"inside"


def test_file_outside_root_refused(root: Path) -> None:
    with pytest.raises(SourceRefused, match="outside the allowed roots"):
        check_source_url(file_url(root.parent / "outside.txt"), SourcePolicy(file_roots=(root,)))


def test_dotdot_traversal_refused(root: Path) -> None:
    with pytest.raises(SourceRefused, match="outside"):
        check_source_url(file_url(root) + "/sub/../../outside.txt", SourcePolicy(file_roots=(root,)))
    with pytest.raises(SourceRefused, match="outside"):
        check_source_url(file_url(root) + "/%2e%2e/outside.txt", SourcePolicy(file_roots=(root,)))


def test_symlink_escaping_root_refused(root: Path) -> None:
    (root / "escape").symlink_to(root.parent / "outside.txt")
    (root / "escape-dir").symlink_to(root.parent)
    policy = SourcePolicy(file_roots=(root,))
    for url in (file_url(root / "escape"), file_url(root / "escape-dir" / "outside.txt")):
        with pytest.raises(SourceRefused, match="outside"):
            read_all(url, policy)


def test_a_folder_swapped_for_a_symlink_after_the_check_is_refused(root: Path) -> None:
    """The race O_NOFOLLOW cannot see: a path component replaced between the root check and the open."""
    from glacier_pipelines.core.sources import file_source

    (root / "sub" / "data.bin").write_bytes(b"inside")
    (root.parent / "elsewhere").mkdir()
    (root.parent / "elsewhere" / "data.bin").write_bytes(b"secret outside the root")
    url = file_url(root / "sub" / "data.bin")
    real = file_source.resolve_file(url, SourcePolicy(file_roots=(root,)))  # the check passes: sub is a folder
    (root / "sub").rename(root / "sub-old")
    (root / "sub").symlink_to(root.parent / "elsewhere")  # then the attacker swaps it
    with pytest.raises(SourceRefused, match="changed while it was opened"):
        file_source.open_file(url, real)
    (root / "sub").unlink()
    (root / "sub-old").rename(root / "sub")
    stream = file_source.open_file(url, real)  # the same path, unchanged, opens
    try:
        assert b"".join(stream.chunks()) == b"inside"
    finally:
        stream.close()


def test_kernel_resolution_agrees_with_realpath(root: Path) -> None:
    from glacier_pipelines.core.sources.file_source import real_path

    (root / "sub" / "link").symlink_to(root / "a file.txt")
    (root.parent / "alias").symlink_to(root)
    (root / "sub" / "dangling").symlink_to(root / "nowhere")
    for path in (
        root / "a file.txt",
        root / "sub" / "link",
        root.parent / "alias" / "sub" / "link",
        root / "sub" / ".." / "a file.txt",
        root / "sub",
        root / "missing.txt",
        root / "sub" / "dangling",
    ):
        assert real_path(str(path)) == os.path.realpath(path), path


def test_symlinks_within_root_allowed(root: Path) -> None:
    (root / "sub" / "link").symlink_to(root / "a file.txt")
    assert read_all(file_url(root / "sub" / "link"), SourcePolicy(file_roots=(root,)))[0] == b"inside"
    alias = root.parent / "alias"  # the root itself reached through a symlink
    alias.symlink_to(root)
    assert read_all(file_url(root / "a file.txt"), SourcePolicy(file_roots=(alias,)))[0] == b"inside"


def test_directory_and_fifo_refused(root: Path) -> None:
    os.mkfifo(root / "pipe")
    policy = SourcePolicy(file_roots=(root,))
    with pytest.raises(SourceRefused, match="directory"):
        read_all(file_url(root / "sub"), policy)
    with pytest.raises(SourceRefused, match="fifo"):
        read_all(file_url(root / "pipe"), policy)  # must not block waiting for a writer


def test_missing_file_not_found(root: Path) -> None:
    with pytest.raises(SourceNotFound) as info:
        read_all(file_url(root / "nope.txt"), SourcePolicy(file_roots=(root,)))
    assert not info.value.retryable


def test_file_refused_without_roots_or_with_host(root: Path) -> None:
    with pytest.raises(SourceRefused, match="no file roots"):
        check_source_url(file_url(root / "a file.txt"), SourcePolicy())
    with pytest.raises(SourceRefused, match="absolute"):
        check_source_url("file://otherhost" + quote(str(root / "a file.txt")), SourcePolicy(file_roots=(root,)))
    with pytest.raises(SourceRefused):
        check_source_url("file:a.txt", SourcePolicy(file_roots=(root,)))


def test_file_shrinking_while_read_is_truncated(root: Path) -> None:
    target = root / "big.bin"
    target.write_bytes(b"q" * 100)
    with open_source(file_url(target), SourcePolicy(file_roots=(root,))) as stream:
        os.truncate(target, 40)
        with pytest.raises(SourceUnavailable, match="truncated: got 40 of 100 bytes"):
            list(stream.chunks(16))


def test_file_growing_while_read_is_detected(root: Path) -> None:
    target = root / "grow.bin"
    target.write_bytes(b"q" * 10)
    with open_source(file_url(target), SourcePolicy(file_roots=(root,))) as stream:
        with open(target, "ab") as f:
            f.write(b"more")
        with pytest.raises(SourceUnavailable, match="longer than"):
            list(stream.chunks())


# --------------------------------------------------------------------------- s3://


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="src")
        yield client


def test_s3_object_streams(s3: Any) -> None:
    s3.put_object(Bucket="src", Key="dir/a b?c.bin", Body=PAYLOAD)  # key taken literally, '?' included
    assert read_all("s3://src/dir/a b?c.bin", SourcePolicy(s3_client=s3)) == (PAYLOAD, len(PAYLOAD))


def test_s3_missing_key_and_bucket(s3: Any) -> None:
    policy = SourcePolicy(s3_client=s3)
    for url in ("s3://src/missing", "s3://no-such-bucket/key"):
        with pytest.raises(SourceNotFound):
            read_all(url, policy)


def test_s3_archived_object_needs_restore(s3: Any) -> None:
    s3.put_object(Bucket="src", Key="cold", Body=b"x", StorageClass="DEEP_ARCHIVE")
    with pytest.raises(SourceUnavailable) as info:
        read_all("s3://src/cold", SourcePolicy(s3_client=s3))
    assert "restore" in info.value.reason.lower()


def test_s3_refused_without_client_or_bad_url() -> None:
    with pytest.raises(SourceRefused, match="no S3 client"):
        check_source_url("s3://src/key", SourcePolicy())
    for url in ("s3://src", "s3://src/", "s3://bad bucket!/key", "s3://user@src/key"):
        with pytest.raises(SourceRefused):
            check_source_url(url, SourcePolicy(s3_client=object()))


class _FakeS3:
    def __init__(self, result: object) -> None:
        self.result = result

    def get_object(self, Bucket: str, Key: str) -> object:  # noqa: N803 - boto3 names
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("AccessDenied", 403, SourceRefused),
        ("NoSuchBucket", 404, SourceNotFound),
        ("SlowDown", 503, SourceUnavailable),
        ("InternalError", 500, SourceUnavailable),
    ],
)
def test_s3_client_errors_are_categorised(code: str, status: int, error: type[SourceError]) -> None:
    exc = ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")
    with pytest.raises(error) as info:
        read_all("s3://src/key", SourcePolicy(s3_client=_FakeS3(exc)))
    assert type(info.value) is error
    assert code in info.value.reason


def test_s3_short_body_is_truncated() -> None:
    fake = _FakeS3({"Body": StreamingBody(io.BytesIO(b"abc"), 10), "ContentLength": 10})
    with pytest.raises(SourceUnavailable, match="truncated: got 3 of 10 bytes"):
        read_all("s3://src/key", SourcePolicy(s3_client=fake), chunk_size=2)


# --------------------------------------------------------------------------- policy parsing


def test_from_strings_parses_roots_and_networks() -> None:
    policy = SourcePolicy.from_strings(roots=f"/data/a{os.pathsep}/data/b, /data/c", networks="127.0.0.0/8, ::1/128", read_timeout=5)
    assert policy.file_roots == (Path("/data/a"), Path("/data/b"), Path("/data/c"))
    assert policy.allowed_networks == (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    assert policy.read_timeout == 5
    assert SourcePolicy.from_strings() == SourcePolicy()


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "nonsense", "10.0.0.1/8"])
def test_from_strings_rejects_bad_cidr(bad: str) -> None:
    with pytest.raises(ValueError, match=bad.replace(".", r"\.")):
        SourcePolicy.from_strings(networks=f"127.0.0.0/8,{bad}")


# --------------------------------------------------------------------------- property


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "f.txt").write_text("x")
    return root


def _numeric_or_public(host: str, port: object, *args: object, **kwargs: object) -> list[tuple]:
    """Resolve IP literals for real; pretend every name is public, so the test needs no DNS."""
    try:
        return _real_getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 80))]


_real_getaddrinfo = socket.getaddrinfo
_PREFIXES = st.sampled_from(["", "file://", "file:///", "http://", "https://", "s3://", "HTTP://", "ftp://"])


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(st.text(), st.builds(str.__add__, _PREFIXES, st.text())))
def test_check_source_url_only_raises_source_errors(fuzz_root: Path, text: str) -> None:
    policy = SourcePolicy(file_roots=(fuzz_root,), s3_client=object())
    with mock.patch.object(socket, "getaddrinfo", _numeric_or_public):
        try:
            check_source_url(text, policy)
        except SourceError as exc:
            assert type(exc) in (SourceRefused, SourceNotFound, SourceUnavailable)
            assert exc.reason
            str(exc).encode("utf-8")  # log-safe: no lone surrogates
    assert isinstance(redact_url(text), str)
