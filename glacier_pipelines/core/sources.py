"""Open archival sources (file://, http(s)://, s3://) for one streaming pass, safely.

Source URLs come from requests, so they are untrusted: file:// is confined to configured roots and
http(s) may not reach private or metadata addresses (SSRF). Failures become categorised ``SourceError``s
whose ``retryable`` flag tells the caller whether trying again can help. Bodies are streamed and
byte-counted so a truncated download is never archived as complete.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import os
import re
import socket
import stat
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urljoin, urlsplit

import requests
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ParamValidationError
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 4096
ALLOWED_NETWORKS_ENV = "GLACIER_SOURCE_ALLOWED_NETWORKS"
_SCHEMES = ("file", "http", "https", "s3")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


def _parse_network(text: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(text.strip())
    except ValueError as exc:
        raise ValueError(f"invalid allowed network {text.strip()!r}: {exc}") from None


@dataclass(frozen=True)
class SourcePolicy:
    """What a pipeline may read. The default allows public http(s) only."""

    file_roots: tuple[Path, ...] = ()
    allowed_networks: tuple[IPNetwork, ...] = ()
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_redirects: int = 5
    s3_client: object | None = None
    user_agent: str = "glacier-pipelines"

    def __post_init__(self) -> None:
        # Normalise str roots / CIDR strings so hand-built policies behave like parsed ones.
        roots: Iterable[Any] = self.file_roots
        nets: Iterable[Any] = self.allowed_networks
        object.__setattr__(self, "file_roots", tuple(Path(r) for r in roots))
        object.__setattr__(self, "allowed_networks", tuple(_parse_network(n) if isinstance(n, str) else n for n in nets))
        if self.connect_timeout <= 0 or self.read_timeout <= 0 or self.max_redirects < 0:
            raise ValueError("timeouts must be positive and max_redirects non-negative")

    @functools.cached_property
    def real_roots(self) -> tuple[str, ...]:
        """The roots with their symlinks resolved, once per policy (a policy lives for one run)."""
        return tuple(_real_path(str(r)) for r in self.file_roots)

    @classmethod
    def from_strings(cls, roots: str = "", networks: str = "", **kw: Any) -> SourcePolicy:
        """Build a policy from config/env text: roots split on os.pathsep or ',', networks on ','."""
        root_list = [r.strip() for r in re.split(f"[,{re.escape(os.pathsep)}]", roots)]
        return cls(
            file_roots=tuple(Path(r).expanduser() for r in root_list if r),
            allowed_networks=tuple(_parse_network(n) for n in networks.split(",") if n.strip()),
            **kw,
        )


class SourceError(Exception):
    """A source could not be read; ``url`` is redacted, ``retryable`` says if a retry may help."""

    retryable: bool = False

    def __init__(self, url: str, reason: str, *, retryable: bool | None = None) -> None:
        self.url = redact_url(url)
        self.reason = reason
        if retryable is not None:
            self.retryable = retryable
        super().__init__(f"{self.url}: {reason}")

    def __reduce__(self) -> Any:  # keep pickling working despite the custom __init__
        return (type(self), (self.url, self.reason), {"retryable": self.retryable})


class SourceRefused(SourceError):
    """The policy forbids this source; retrying will not help."""


class SourceNotFound(SourceError):
    """The source does not exist."""


class SourceUnavailable(SourceError):
    """A transient failure (timeout, reset, 5xx, truncation, archived object); retry later."""

    retryable = True


def _show(text: str, limit: int = 300) -> str:
    """Make text log-safe: escape control characters and lone surrogates, bound the length."""
    text = text[:limit] + ("..." if len(text) > limit else "")
    text = "".join(f"\\x{ord(c):02x}" if unicodedata.category(c) == "Cc" else c for c in text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def redact_url(url: str) -> str:
    """Strip userinfo everywhere, and query/fragment of http(s) URLs (pre-signed signatures)."""
    try:
        text = _show(str(url), MAX_URL_LENGTH)
        parts = urlsplit(text)
        if "@" in parts.netloc:  # edit the text rather than urlunsplit, which would reshape odd URLs
            text = text.replace("//" + parts.netloc, "//" + parts.netloc.rpartition("@")[2], 1)
        if parts.scheme.lower() in ("http", "https"):
            text = re.split(r"[?#]", text, maxsplit=1)[0]
        return text
    except Exception:
        return "<unparseable URL>"


class _Target(NamedTuple):
    scheme: str
    path: str = ""
    bucket: str = ""
    key: str = ""


def check_source_url(url: str, policy: SourcePolicy) -> None:
    """Validate ``url`` against ``policy`` (DNS and filesystem lookups only, no download)."""
    _validate(url, policy)


def _validate(url: str, policy: SourcePolicy) -> _Target:
    try:
        if not isinstance(url, str) or not url.strip():
            raise SourceRefused(str(url), "empty URL")
        if len(url) > MAX_URL_LENGTH:
            raise SourceRefused(url, f"URL is longer than {MAX_URL_LENGTH} characters")
        if any(unicodedata.category(c) == "Cc" for c in url):
            raise SourceRefused(url, "URL contains control characters")
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError as exc:
            raise SourceRefused(url, _show(f"malformed URL: {exc}")) from None
        if scheme not in _SCHEMES:
            what = f"unsupported scheme {scheme!r}" if scheme else "not an absolute URL"
            raise SourceRefused(url, f"{what}; only file://, http://, https:// and s3:// are allowed")
        if scheme == "file":
            return _Target(scheme, path=_resolve_file(url, policy))
        if scheme == "s3":
            bucket, key = _split_s3(url, policy)
            return _Target(scheme, bucket=bucket, key=key)
        _check_host(url, policy)
        return _Target(scheme)
    except SourceError:
        raise
    except Exception as exc:
        raise _wrap(url, exc) from exc


def _resolve_file(url: str, policy: SourcePolicy) -> str:
    """Return the real path of a file:// URL, refusing anything that escapes the roots."""
    if not policy.file_roots:
        raise SourceRefused(url, "file:// sources are disabled (no file roots configured)")
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise SourceRefused(url, "file URLs must be file:///absolute/path (no remote host)")
    if parts.query or parts.fragment:
        raise SourceRefused(url, "file URL has a query or fragment; encode '?' and '#' as %3F and %23")
    path = unquote(parts.path, errors="surrogateescape")
    if not path.startswith("/") or "\x00" in path:
        raise SourceRefused(url, "file URL path must be absolute and must not contain NUL")
    real = _real_path(path)
    roots = list(policy.real_roots)
    if not any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots):
        raise SourceRefused(url, _show(f"{path} resolves to {real}, outside the allowed roots {roots}"))
    try:
        mode = os.stat(real).st_mode
    except OSError as exc:
        raise _os_error(url, exc) from exc
    if not stat.S_ISREG(mode):
        raise SourceRefused(url, f"not a regular file ({_file_kind(mode)})")
    return real


def _real_path(path: str) -> str:
    """``os.path.realpath``, resolved by the kernel in one step where Linux allows.

    An O_PATH descriptor resolves every symlink without opening the file itself (no device or
    fifo driver is touched) and /proc names where it led. ``os.path.realpath`` walks the path
    in Python, an lstat per component: with thousands of small files it led the profile.
    """
    o_path = getattr(os, "O_PATH", 0)
    if o_path:
        try:
            fd = os.open(path, o_path | os.O_CLOEXEC)
        except OSError:
            return os.path.realpath(path)  # missing or unreadable: the stat that follows says why
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
        finally:
            os.close(fd)
    return os.path.realpath(path)


def _file_kind(mode: int) -> str:
    kinds = {stat.S_ISDIR: "directory", stat.S_ISFIFO: "fifo", stat.S_ISSOCK: "socket"}
    return next((name for test, name in kinds.items() if test(mode)), "device or special file")


def _split_s3(url: str, policy: SourcePolicy) -> tuple[str, str]:
    if policy.s3_client is None:
        raise SourceRefused(url, "s3:// sources are disabled (no S3 client configured)")
    bucket, _, key = url.split("://", 1)[1].partition("/")  # key is literal, may contain '?' or '#'
    if not _BUCKET.fullmatch(bucket):
        raise SourceRefused(url, _show(f"invalid S3 bucket name {bucket!r}"))
    if not key:
        raise SourceRefused(url, "s3 URL has no object key (expected s3://bucket/key)")
    return bucket, key


def _check_host(url: str, policy: SourcePolicy) -> None:
    """Refuse http(s) hosts that resolve to any non-public address (SSRF, cloud metadata)."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise SourceRefused(url, "URL has no host")
    if not host.isascii():  # getaddrinfo (IDNA 2003) and requests (IDNA 2008) could resolve different names
        raise SourceRefused(url, _show(f"non-ASCII host {host!r}; use its punycode (xn--) form"))
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise SourceRefused(url, "URL has an invalid port") from None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
            raise SourceNotFound(url, _show(f"host {host!r} does not resolve")) from None
        raise SourceUnavailable(url, _show(f"DNS lookup of {host!r} failed: {exc}")) from None
    except (OSError, UnicodeError, ValueError) as exc:
        raise SourceRefused(url, _show(f"invalid host {host!r}: {exc}")) from None
    if not infos:
        raise SourceNotFound(url, _show(f"host {host!r} has no addresses"))
    for family, _, _, _, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        try:
            addr = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        except ValueError:
            raise SourceRefused(url, _show(f"host {host!r} resolves to an unparseable address")) from None
        ip = (addr.ipv4_mapped if isinstance(addr, ipaddress.IPv6Address) else None) or addr
        problem = _non_public(ip)
        if problem and not any(a in net for a in {addr, ip} for net in policy.allowed_networks):
            raise SourceRefused(
                url,
                _show(
                    f"host {host!r} resolves to {ip} ({problem} address), refused to prevent SSRF; to allow "
                    f"it add its network to SourcePolicy.allowed_networks (env {ALLOWED_NETWORKS_ENV}, "
                    f"e.g. '{ip}/{ip.max_prefixlen}')",
                    600,
                ),
            )


def _non_public(ip: IPAddress) -> str | None:
    """Name why ``ip`` is not publicly routable (most specific first), or None if it is."""
    checks = (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("unspecified", ip.is_unspecified),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("non-global", not ip.is_global),
    )
    return next((label for label, flagged in checks if flagged), None)


class SourceStream:
    """A source opened for exactly one pass; the byte count is checked against ``size``."""

    def __init__(self, url: str, size: int | None, read: Callable[[int], Iterable[bytes]], close: Callable[[], None]) -> None:
        self.url = redact_url(url)
        self.size = size
        self._read = read
        self._close = close
        self._used = False
        self._closed = False

    def chunks(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Yield the body in chunks of at most ``chunk_size`` bytes; only one pass is possible."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        if self._used or self._closed:
            raise SourceError(self.url, "stream already consumed or closed; a source is read only once")
        self._used = True
        return self._iterate(chunk_size)

    def _iterate(self, chunk_size: int) -> Iterator[bytes]:
        got = 0
        try:
            for chunk in self._read(chunk_size):
                for start in range(0, len(chunk), chunk_size):
                    piece = chunk[start : start + chunk_size]
                    got += len(piece)
                    if self.size is not None and got > self.size:
                        raise SourceUnavailable(
                            self.url, f"body longer than the expected {self.size} bytes (source changed while reading?)"
                        )
                    yield piece
        except SourceError:
            raise
        except Exception as exc:
            err = _wrap(self.url, exc)
            if isinstance(err, SourceUnavailable) and self.size is not None and got < self.size:
                err = SourceUnavailable(self.url, f"truncated: got {got} of {self.size} bytes ({err.reason})")
            raise err from None
        if self.size is not None and got < self.size:
            raise SourceUnavailable(self.url, f"truncated: got {got} of {self.size} bytes")

    def close(self) -> None:
        """Release the file/connection; safe to call twice, never raises."""
        if not self._closed:
            self._closed = True
            try:
                self._close()
            except Exception:
                pass  # nothing useful to do with a failed close of a read-only source


@contextmanager
def open_source(url: str, policy: SourcePolicy) -> Iterator[SourceStream]:
    """Validate and open ``url``; the underlying file/connection is always closed on exit."""
    stream = _open(url, policy)
    try:
        yield stream
    finally:
        stream.close()


def _open(url: str, policy: SourcePolicy) -> SourceStream:
    target = _validate(url, policy)
    try:
        if target.scheme == "file":
            return _open_file(url, target.path)
        if target.scheme == "s3":
            client: Any = policy.s3_client
            resp = client.get_object(Bucket=target.bucket, Key=target.key)
            body = resp["Body"]
            size = resp.get("ContentLength")
            return SourceStream(url, size if isinstance(size, int) else None, body.iter_chunks, body.close)
        return _open_http(url, policy)
    except SourceError:
        raise
    except Exception as exc:
        raise _wrap(url, exc) from None


def _open_file(url: str, real: str) -> SourceStream:
    # O_NONBLOCK so a fifo swapped in after the check cannot hang open(); fstat re-checks the type.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(real, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SourceRefused(url, f"not a regular file ({_file_kind(st.st_mode)})")
        opened = _opened_path(fd)
        if opened is not None and opened != real:
            # O_NOFOLLOW guards only the last component: a folder swapped for a symlink after the
            # root check would lead elsewhere. The kernel says which file was really opened.
            raise SourceRefused(url, _show(f"{real} changed while it was opened (it now leads to {opened}): refused"))
        f = open(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise
    return SourceStream(url, st.st_size, lambda n: iter(lambda: f.read(n), b""), f.close)


def _opened_path(fd: int) -> str | None:
    """The path of an open file as the kernel resolved it (Linux /proc), or None where unknown."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def _open_http(url: str, policy: SourcePolicy) -> SourceStream:
    session = requests.Session()
    session.trust_env = False  # env proxies would bypass the address check; .netrc would leak creds
    headers = {"User-Agent": policy.user_agent, "Accept-Encoding": "identity"}  # hash the bytes as stored
    current = url
    try:
        for _ in range(policy.max_redirects + 1):
            resp = session.get(
                current, stream=True, allow_redirects=False, headers=headers, timeout=(policy.connect_timeout, policy.read_timeout)
            )
            if resp.status_code in _REDIRECTS:
                location = resp.headers.get("Location")
                resp.close()
                if not location:
                    raise SourceRefused(url, f"HTTP {resp.status_code} redirect without a Location header")
                current = _redirect_target(url, current, location, policy)
                continue
            if resp.status_code != 200:
                resp.close()
                raise _status_error(url, resp)

            def close_both() -> None:
                resp.close()
                session.close()

            return SourceStream(url, _content_length(resp), resp.iter_content, close_both)
        raise SourceRefused(url, f"too many redirects (more than {policy.max_redirects})")
    except BaseException:
        session.close()
        raise


def _redirect_target(url: str, current: str, location: str, policy: SourcePolicy) -> str:
    """Re-validate every redirect hop: it must stay http(s) and pass the address check again."""
    try:
        target = urljoin(current, location)
        if urlsplit(target).scheme.lower() not in ("http", "https"):
            raise SourceRefused(target, "redirects may only lead to http:// or https://")
        _validate(target, policy)
        return target
    except SourceError as exc:
        raise type(exc)(url, f"redirected to {exc.url}: {exc.reason}", retryable=exc.retryable) from None
    except ValueError:
        raise SourceRefused(url, _show(f"redirect to a malformed URL {location!r}")) from None


def _content_length(resp: requests.Response) -> int | None:
    if resp.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity"):
        return None  # the server ignored Accept-Encoding; Content-Length counts encoded bytes
    value = resp.headers.get("Content-Length", "").strip()
    return int(value) if value.isascii() and value.isdigit() else None


def _status_error(url: str, resp: requests.Response) -> SourceError:
    code = resp.status_code
    reason = f"HTTP {code} {_show(resp.reason or '', 80)}".strip()
    if code in (404, 410):
        return SourceNotFound(url, reason)
    if code in (408, 429) or code >= 500:
        retry_after = resp.headers.get("Retry-After")
        return SourceUnavailable(url, reason + (f" (Retry-After: {_show(retry_after, 40)})" if retry_after else ""))
    if 400 <= code < 500:
        return SourceRefused(url, reason)
    return SourceRefused(url, f"unexpected {reason}")


def _wrap(url: str, exc: BaseException) -> SourceError:
    """Translate any library error into the SourceError family, scrubbing secrets it may echo."""
    try:
        detail = str(exc) or type(exc).__name__
        parts = urlsplit(url)
        for secret in (parts.password, parts.username, parts.query):
            detail = detail.replace(secret, "[redacted]") if secret else detail
        detail = _show(re.sub(r"\?[^\s)'\"]*", "?[redacted]", detail))
    except Exception:
        detail = type(exc).__name__
    if isinstance(exc, requests.Timeout) or any(
        isinstance(e, (TimeoutError, Urllib3TimeoutError)) for e in (exc, *getattr(exc, "args", ()))
    ):
        return SourceUnavailable(url, f"timed out: {detail}")
    if isinstance(exc, requests.RequestException) and isinstance(exc, ValueError):
        return SourceRefused(url, f"invalid request: {detail}")  # InvalidURL, InvalidHeader, ...
    if isinstance(exc, (requests.RequestException, Urllib3HTTPError)):
        return SourceUnavailable(url, f"connection failed: {detail}")
    if isinstance(exc, ClientError):
        return _s3_error(url, exc)
    if isinstance(exc, (NoCredentialsError, ParamValidationError)):
        return SourceRefused(url, f"S3 request refused: {detail}")
    if isinstance(exc, BotoCoreError):
        return SourceUnavailable(url, f"S3 connection failed: {detail}")
    if isinstance(exc, OSError):
        return _os_error(url, exc)
    return SourceUnavailable(url, f"unexpected {type(exc).__name__}: {detail}")


def _os_error(url: str, exc: OSError) -> SourceError:
    detail = _show(exc.strerror or str(exc) or type(exc).__name__)
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return SourceNotFound(url, f"no such file: {detail}")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.ELOOP):
        return SourceRefused(url, f"cannot open: {detail}")
    return SourceUnavailable(url, f"I/O error: {detail}")


def _s3_error(url: str, exc: ClientError) -> SourceError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    detail = _show(f"S3 {code or status}: {error.get('Message') or code}")
    if code in ("NoSuchKey", "NoSuchBucket", "NotFound", "404") or status == 404:
        return SourceNotFound(url, detail)
    if code == "InvalidObjectState":
        where = f" in {error['StorageClass']}" if error.get("StorageClass") else ""
        return SourceUnavailable(url, f"object is archived{where} and must be restored (S3 RestoreObject) before it can be read ({detail})")
    if code in ("AccessDenied", "AllAccessDisabled", "403") or status == 403:
        return SourceRefused(url, detail)
    return SourceUnavailable(url, detail)
